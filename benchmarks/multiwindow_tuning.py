"""Multi-window (backtest-style) tuning objective toward issue 4's goal (2017 test ROC AUC
>= 0.86, booking-time features only).

The single validation window (2016-07..2016-12) is another season than the 2017 test
(Jan..Aug), so tuning on it overfits it. Here the objective is the mean ROC AUC over several
rolling origins *inside the pre-2017 data*: for each origin O in --origins, fit on every
arrival before O and score the arrivals of [O, O + --horizon months). Nothing is ever
selected on 2017 data; the 2017 test ROC AUC is computed once per probe, after the choice,
by refitting on every arrival before 2017-01-01 (= train + validation of `innflow train`).

Everything comes from innflow: data loading/validation, the leakage-guarded input columns
(configs/default.yaml: no known-later columns, no arrival_date_year as a model feature, no
required_car_parking_spaces), the feature pipeline, LightGBM construction and pinning, and
the default search space (innflow.modeling.tuning.DEFAULT_SPACES["lightgbm"]).

Probes:
- default:  innflow's default LightGBM params (no search), scored the same way;
- val-tuned: the params `innflow tune` chose on the single validation window (no search);
- tuned:    Optuna TPE (seed 42) over innflow's default LightGBM space, --trials trials;
- recency:  as tuned, plus sample weights 0.5 ** (age_months / half_life), age measured from
            the last training arrival; half_life (months, log-uniform in [3, 48]) is tuned
            with the LightGBM params;
- recency-default: default LightGBM params, only half_life tuned (--half-life-trials).

Run (single-threaded, ~14 min for all probes on this machine):
  uv run python benchmarks/multiwindow_tuning.py \
      --probes default val-tuned tuned recency-default recency \
      --trials 30 --half-life-trials 10 --budget-minutes 55
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/LightGBM load their pools

import argparse
import json
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score

from innflow import config as config_module
from innflow import data as bookings
from innflow.modeling import models, tuning

THREADS = 1
# Best params of `innflow tune --trials 40` on the single validation window (from
# benchmarks/quality_probes.py TUNED): scored here on the multi-window objective for contrast.
VAL_TUNED = {
    "n_estimators": 229, "learning_rate": 0.022661268537374137, "num_leaves": 9,
    "min_child_samples": 161, "colsample_bytree": 0.7088175228677253,
    "subsample": 0.7176139174555507, "reg_lambda": 3.6640680034282904,
}  # fmt: skip
HALF_LIFE = {"type": "float", "low": 3.0, "high": 48.0, "log": True}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Problem:
    """The data, the rolling windows and the fit-and-score function shared by all probes."""

    def __init__(self, root: Path, origins: list[str], horizon: int) -> None:
        self.base = config_module.load(
            root / "configs" / "default.yaml",
            [f"data.path={root / 'data' / 'hotel_bookings.parquet'}"],
        )
        assert self.base.model.kind == "lightgbm"
        assert self.base.split.strategy == "time"
        frame = bookings.load_data(self.base.data.path)
        self.arrival = bookings.arrival_dates(frame)
        self.frame = frame
        self.columns = bookings.input_columns(self.base.features)
        self.test_start = pd.Timestamp(self.base.split.test_start)
        self.windows = []
        for origin in origins:
            start = pd.Timestamp(origin)
            end = start + pd.DateOffset(months=horizon)
            if end > self.test_start:
                raise SystemExit(f"window {origin}+{horizon}m reaches into the test period")
            fit_mask = (self.arrival < start).to_numpy()
            score_mask = ((self.arrival >= start) & (self.arrival < end)).to_numpy()
            self.windows.append((origin, fit_mask, score_mask))
        val_start = pd.Timestamp(self.base.split.validation_start)
        self.pre_test = [  # = train + validation of `innflow train`, in its order
            (self.arrival < val_start).to_numpy(),
            ((self.arrival >= val_start) & (self.arrival < self.test_start)).to_numpy(),
        ]
        test = self.arrival >= self.test_start
        if self.base.split.test_end is not None:
            test &= self.arrival <= pd.Timestamp(self.base.split.test_end)
        self.test = test.to_numpy()

    def config(self, params: dict):
        """The default config with these LightGBM params."""
        tree = self.base.to_dict()
        tree["model"]["params"] = params
        return config_module.from_dict(tree)

    def fit_score(self, params: dict, fit_mask, score_mask, half_life: float | None) -> float:
        """Fit innflow's pipeline on ``fit_mask`` rows, ROC AUC on ``score_mask`` rows.

        ``fit_mask`` may also be a list of masks, concatenated in order (the test refit uses
        train then validation, in `innflow train`'s row order, so bagging draws match it).
        """
        parts = fit_mask if isinstance(fit_mask, list) else [fit_mask]
        train = pd.concat([self.frame[m] for m in parts])
        judged = self.frame[score_mask]
        fit_arrival = pd.concat([self.arrival[m] for m in parts])
        pipeline = models.build_pipeline(self.config(params), self.columns, THREADS)
        weight = None
        if half_life:
            arrival = fit_arrival
            age_months = (arrival.max() - arrival).dt.days.to_numpy() / 30.4
            weight = 0.5 ** (age_months / half_life)
        n_categorical = len(pipeline.named_steps["encode"].transformers[0][2])
        with models.pinned_threads("lightgbm", THREADS):
            pipeline.fit(
                train[self.columns], train[bookings.TARGET].to_numpy(),
                model__sample_weight=weight,
                model__categorical_feature=list(range(n_categorical)),
            )  # fmt: skip
        proba = models.predict_proba(pipeline, judged[self.columns], THREADS)
        return float(roc_auc_score(judged[bookings.TARGET].to_numpy(), proba))

    def objective(self, params, half_life=None, report=None) -> tuple[float, list[float]]:
        """Mean ROC AUC over the rolling windows (pre-2017 data only)."""
        scores = []
        for step, (_, fit_mask, score_mask) in enumerate(self.windows):
            scores.append(self.fit_score(params, fit_mask, score_mask, half_life))
            if report is not None:
                report(step, float(np.mean(scores)))
        return float(np.mean(scores)), scores

    def test_auc(self, params, half_life=None) -> float:
        """Refit on every arrival before test_start; ROC AUC on the test window. Report only."""
        return self.fit_score(params, self.pre_test, self.test, half_life)


def search(problem: Problem, trials: int, deadline: float, with_half_life: bool,
           tune_lgbm: bool = True, seed: int = 42):  # fmt: skip
    space = tuning.search_space(problem.base) if tune_lgbm else {}
    hl_spec = config_module.ParamSpec(**HALF_LIFE)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def run(trial: optuna.Trial) -> float:
        params = tuning.suggest(trial, space)
        half = None
        if with_half_life:
            half = tuning.suggest(trial, {"half_life": hl_spec})["half_life"]
        started = time.perf_counter()
        value, scores = problem.objective(params, half)
        trial.set_user_attr("window_aucs", scores)
        log(f"  trial {trial.number}: {value:.4f} windows {[round(s, 4) for s in scores]} "
            f"({time.perf_counter() - started:.0f}s) {params} half_life={half}")  # fmt: skip
        return value

    for _ in range(trials):
        remaining = deadline - time.time()
        if remaining <= 0:
            log("  budget reached: stopping the search")
            break
        study.optimize(run, n_trials=1)
    return study


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument(
        "--origins", nargs="+", default=["2016-01", "2016-04", "2016-07", "2016-10"]
    )
    parser.add_argument("--horizon", type=int, default=3, help="months scored after each origin")
    parser.add_argument(
        "--probes",
        nargs="+",
        default=["default", "val-tuned", "tuned", "recency-default", "recency"],
        choices=["default", "val-tuned", "tuned", "recency", "recency-default"],
    )
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--recency-trials", type=int, default=None, help="default: --trials")
    parser.add_argument(
        "--half-life-trials",
        type=int,
        default=10,
        help="trials of recency-default (half-life only, default params)",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=55.0,
        help="stop starting new trials after this wall time (whole script)",
    )
    parser.add_argument("--out", type=Path, default=Path("multiwindow_results.json"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.time()
    deadline = started + 60 * args.budget_minutes
    problem = Problem(args.root, args.origins, args.horizon)
    log(f"windows: {[(o, int(f.sum()), int(s.sum())) for o, f, s in problem.windows]}; "
        f"pre-test rows {sum(int(m.sum()) for m in problem.pre_test)}, "
        f"test rows {int(problem.test.sum())}; "
        f"columns {problem.columns}")  # fmt: skip
    results = []

    def record(name, trials, objective, scores, params, half_life, seconds):
        t0 = time.perf_counter()
        test = problem.test_auc(params, half_life)
        row = {"probe": name, "trials": trials, "objective": objective, "window_aucs": scores,
               "test_roc_auc": test, "params": params, "half_life": half_life,
               "search_seconds": seconds, "test_fit_seconds": time.perf_counter() - t0}  # fmt: skip
        results.append(row)
        log(
            f"RESULT {name}: trials {trials} objective {objective:.4f} test {test:.4f} "
            f"params {params} half_life {half_life}"
        )
        args.out.write_text(json.dumps(results, indent=2))

    for probe in args.probes:
        t0 = time.time()
        if probe == "default":
            value, scores = problem.objective({})
            record("default", 0, value, scores, {}, None, time.time() - t0)
        elif probe == "val-tuned":
            value, scores = problem.objective(VAL_TUNED)
            record("val-tuned", 0, value, scores, VAL_TUNED, None, time.time() - t0)
        elif probe in ("tuned", "recency", "recency-default"):
            half = probe != "tuned"
            n = {
                "tuned": args.trials,
                "recency": args.recency_trials or args.trials,
                "recency-default": args.half_life_trials,
            }[probe]
            log(f"{probe}: searching up to {n} trials")
            study = search(problem, n, deadline, with_half_life=half,
                           tune_lgbm=probe != "recency-default")  # fmt: skip
            done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            if not done:
                log(f"{probe}: no completed trial within the budget")
                continue
            best = study.best_trial
            params = {k: v for k, v in best.params.items() if k != "half_life"}
            record(probe, len(done), best.value, best.user_attrs["window_aucs"], params,
                   best.params.get("half_life"), time.time() - t0)  # fmt: skip
            study.trials_dataframe().to_csv(args.out.with_name(f"trials_{probe}.csv"), index=False)
        if time.time() > deadline:
            log("budget reached: no further probes")
            break
    log(f"total wall time {time.time() - started:.0f}s")
    for row in results:
        print(
            f"{row['probe']:>16} trials {row['trials']:>3} objective {row['objective']:.4f} "
            f"test {row['test_roc_auc']:.4f} half_life {row['half_life']} params {row['params']}"
        )


if __name__ == "__main__":
    main()
