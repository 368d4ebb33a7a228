"""`innflow train`: load and check the data, fit, evaluate, and record one complete run.

The run is opened first (the store's permission check, before any fitting); then the fit
runs in a worker thread while the main thread logs everything known up front (config,
provenance, datasets), so tracking costs little wall time on top of the fit itself.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from innflow import assessment, models, plots, provenance, report, tracking
from innflow import data as bookings
from innflow.assessment import Assessment
from innflow.config import Config, flatten
from innflow.errors import ConfigError, DataValidationError
from innflow.workflows.monitor import write_reference

Step = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def resolve_threads(threads: int | None) -> int:
    """Threads for fitting: the argument, else INNFLOW_THREADS, else all cores.

    A runtime choice, not part of the config: results are identical at any thread count.
    """
    if threads is None:
        raw = os.environ.get("INNFLOW_THREADS")
        try:
            threads = int(raw) if raw else (os.cpu_count() or 1)
        except ValueError as e:
            raise ConfigError(f"INNFLOW_THREADS must be a whole number, got {raw!r}") from e
    if threads < 1:
        raise ConfigError(f"threads must be at least 1, got {threads}")
    return threads


@dataclass(frozen=True)
class Prepared:
    """Validated data, its fingerprint, the split and the leakage-checked input columns."""

    config: Config
    data_sha256: str
    split: bookings.Split
    input_columns: list[str]

    def features(self, part: str) -> pd.DataFrame:
        """Model input (raw columns) of one split part."""
        return getattr(self.split, part)[self.input_columns]

    def labels(self, part: str) -> np.ndarray:
        """Labels of one split part."""
        return getattr(self.split, part)[bookings.TARGET].to_numpy()


def prepare(config: Config) -> Prepared:
    """Everything that can fail on bad input, done before any run is opened."""
    input_columns = bookings.input_columns(config.features)
    models.build_pipeline(config, input_columns, threads=1)  # validates model.params early
    path = config.data.path
    if not path.exists():
        raise DataValidationError(f"data file not found: {path}")
    sha = bookings.file_sha256(path)
    if config.data.sha256 and config.data.sha256 != sha:
        raise DataValidationError(
            f"{path} has sha256 {sha[:12]}..., "
            f"but data.sha256 requires {config.data.sha256[:12]}..."
        )
    frame = bookings.load_bookings(path)
    return Prepared(config, sha, bookings.split(frame, config.split, config.seed), input_columns)


@dataclass(frozen=True)
class Fitted:
    """The model that will be logged, its threshold and its validation and test scores."""

    pipeline: Pipeline
    threshold: float
    val_proba: np.ndarray
    test_proba: np.ndarray
    durations: dict[str, float]

    @property
    def predictions_sha256(self) -> str:
        """Fingerprint of the test-set probabilities."""
        return provenance.predictions_sha256(self.test_proba)


@dataclass
class Trained:
    """A fitted model and its assessment."""

    fitted: Fitted
    assessment: Assessment

    @property
    def metrics(self) -> dict[str, float]:
        """Every metric of the run."""
        return self.assessment.metrics


def fit(prepared: Prepared, threads: int, on_step: Step = _quiet) -> Fitted:
    """Fit on train, choose the threshold on validation, refit on train+validation (if
    configured), and score test with the model that will be logged.
    """
    config, cols, split = prepared.config, prepared.input_columns, prepared.split
    started = time.perf_counter()
    on_step(f"fitting {config.model.kind} on {len(split.train):,} bookings")
    pipeline = models.fit(
        models.build_pipeline(config, cols, threads),
        prepared.features("train"), prepared.labels("train"), threads,
    )  # fmt: skip
    val_proba = models.predict_proba(pipeline, prepared.features("validation"), threads)
    y_val = prepared.labels("validation")
    threshold = assessment.choose_threshold(config, y_val, val_proba, split.validation)
    if config.model.refit_on_validation:
        on_step("refitting on train + validation")
        both = pd.concat([prepared.features("train"), prepared.features("validation")])
        y_both = np.concatenate([prepared.labels("train"), y_val])
        pipeline = models.fit(models.build_pipeline(config, cols, threads), both, y_both, threads)
    test_proba = models.predict_proba(pipeline, prepared.features("test"), threads)
    durations = {"fit": time.perf_counter() - started}
    return Fitted(pipeline, threshold, val_proba, test_proba, durations)


def evaluate(prepared: Prepared, fitted: Fitted) -> Trained:
    """Metrics, calibration, cost, slices, leakage audit and explanations of a fitted model."""
    split = prepared.split
    parts = {
        "val": (split.validation, prepared.labels("validation"), fitted.val_proba),
        "test": (split.test, prepared.labels("test"), fitted.test_proba),
    }
    result = assessment.assess(
        prepared.config, fitted.pipeline, fitted.threshold, parts, split.train,
        prepared.input_columns,
    )  # fmt: skip
    return Trained(fitted, result)


def fit_and_evaluate(prepared: Prepared, threads: int, on_step: Step = _quiet) -> Trained:
    """Fit, then assess: the whole computation of a training run, without tracking."""
    return evaluate(prepared, fit(prepared, threads, on_step))


@dataclass(frozen=True)
class TrainOutcome:
    """What `innflow train` reports."""

    run_id: str
    experiment_id: str
    model_uri: str
    metrics: dict[str, float]
    predictions_sha256: str
    tracking_uri: str


def _setup_tags(
    prepared: Prepared, threads: int, extra: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    config = prepared.config
    code = provenance.code_state()
    tags = {
        "innflow.kind": "train",
        "innflow.model_kind": config.model.kind,
        **code.tags(),
        "mlflow.source.git.commit": code.commit,
        "innflow.data_path": str(config.data.path),
        "innflow.data_sha256": prepared.data_sha256,
        "innflow.config_sha256": config.digest(),
        "innflow.split": prepared.split.strategy,
        "innflow.known_later": str(config.features.allow_known_later).lower(),
        "innflow.threads": str(threads),
        **provenance.environment_tags(),
        **extra,
    }
    if prepared.split.strategy == "random":
        tags["innflow.warning"] = "random split: test metrics overstate out-of-time performance"
    artifacts = {"environment/installed.txt": provenance.installed_distributions()}
    lock = provenance.source_root() / "uv.lock"
    if lock.exists():
        artifacts["environment/uv.lock"] = lock.read_text()
    if code.dirty:
        artifacts["code/uncommitted.diff"] = code.diff
    return tags, artifacts


def _pip_requirements(kind: str) -> list[str]:
    names = ["mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops", "pyarrow",
             "pydantic", "pyyaml", "threadpoolctl"]  # fmt: skip
    names += {"lightgbm": ["lightgbm"], "xgboost": ["xgboost-cpu"]}.get(kind, [])
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in names]


def _write_evaluation(prepared: Prepared, fitted: Fitted, directory: Path) -> Trained:
    """Assess the model, then write plots under ``directory/plots`` and the one-page
    ``evaluation.html`` beside them.
    """
    trained = evaluate(prepared, fitted)
    config, result = prepared.config, trained.assessment
    y, p, t = prepared.labels("test"), fitted.test_proba, fitted.threshold
    plot_dir = directory / "plots"
    plot_dir.mkdir()
    plots.roc(y, p, plot_dir / "roc.png")
    plots.precision_recall(y, p, t, plot_dir / "precision_recall.png")
    plots.calibration(y, p, plot_dir / "calibration.png", config.evaluation.calibration_bins)
    plots.confusion(y, p, t, plot_dir / "confusion_matrix.png")
    plots.importance(
        result.importance, f"Feature importance: {result.importance_kind}",
        plot_dir / "feature_importance.png",
    )  # fmt: skip
    plots.cost_curve(
        result.cost_curve, t, result.metrics["test_cost_baseline"], plot_dir / "cost_curve.png"
    )
    plots.slices(
        result.slices, result.metrics["test_roc_auc"], plot_dir / "slices.png",
        config.evaluation.slice_min_support,
    )  # fmt: skip
    context = {
        "model kind": config.model.kind,
        "data": f"{config.data.path} (sha256 {prepared.data_sha256[:16]}...)",
        "split": f"{prepared.split.strategy}: "
        + ", ".join(f"{k} {v:,}" for k, v in prepared.split.sizes().items()),
        "input columns": ", ".join(prepared.input_columns),
    }
    html = report.render(f"innflow evaluation: {config.model.kind}", result, plot_dir, context)
    (directory / "evaluation.html").write_text(html)
    return trained


def train(
    config: Config,
    threads: int | None = None,
    on_step: Step = _quiet,
    extra_tags: dict[str, str] | None = None,
    prepared: Prepared | None = None,
    parent_run_id: str | None = None,
) -> TrainOutcome:
    """Train one model and record it as one MLflow run; the run never stays RUNNING."""
    threads = resolve_threads(threads)
    on_step("loading and validating data")
    prepared = prepared or prepare(config)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="innflow-fit") as pool:
        store = tracking.connect(config.tracking.uri)
        tags, artifacts = _setup_tags(prepared, threads, extra_tags or {})
        params = flatten(config.to_dict())
        params["input_columns"] = ",".join(prepared.input_columns)
        run_name = config.tracking.run_name
        # Inside `innflow notebook run`, the training becomes a child of the notebook's run.
        parent_run_id = parent_run_id or tracking.notebook_run_id()
        with tracking.run(config.tracking.experiment, run_name, tags, parent_run_id) as active:
            # Only now, with the run open, does the fit start: opening it is where the store
            # checks that this user may write to the experiment, so a refusal (a READ user,
            # wrong credentials, a server that is down) costs no fitting.
            fitting = pool.submit(fit, prepared, threads, on_step)
            tracking.log_setup(config.to_yaml(), params, tags, artifacts)
            tracking.log_datasets(
                {p: getattr(prepared.split, p) for p in ("train", "validation", "test")},
                source=str(config.data.path),
                target=bookings.TARGET,
            )
            fitted = fitting.result()
            on_step("evaluating (metrics, slices, cost, explanations) while logging the model")
            with tempfile.TemporaryDirectory(prefix="innflow-evaluation-") as tmp:
                evaluating = pool.submit(_write_evaluation, prepared, fitted, Path(tmp))
                reference = write_reference(prepared, fitted, Path(tmp))
                uri = tracking.log_model(
                    fitted.pipeline,
                    inputs=prepared.features("test"),
                    pip_requirements=_pip_requirements(config.model.kind),
                    metadata={
                        "innflow_threshold": fitted.threshold,
                        "innflow_model_kind": config.model.kind,
                        "innflow_predictions_sha256": fitted.predictions_sha256,
                        "innflow_input_columns": prepared.input_columns,
                        tracking.PROFILE_KEY: reference,
                    },
                    code_dir=Path(__file__).resolve().parents[1],
                    nullable=tuple(c for c in prepared.input_columns if bookings.SCHEMA[c][1]),
                )
                trained = evaluating.result()
                sizes = {f"rows_{k}": float(v) for k, v in prepared.split.sizes().items()}
                timing = {f"duration_{k}_seconds": v for k, v in fitted.durations.items()}
                result_tags = {
                    "innflow.predictions_sha256": fitted.predictions_sha256,
                    "innflow.threshold": repr(fitted.threshold),
                    "innflow.model_uri": uri,
                    "innflow.slices_flagged": ",".join(trained.assessment.flagged_slices()),
                    "innflow.audit_flagged": ",".join(trained.assessment.flagged_audit()),
                }
                metrics = {**trained.metrics, **sizes, **timing}
                tables = {
                    "evaluation/slices.json": trained.assessment.slices,
                    "evaluation/leakage_audit.json": trained.assessment.audit,
                    "evaluation/cost_curve.json": trained.assessment.cost_curve,
                }
                tracking.log_results(metrics, result_tags, Path(tmp), tables)
            return TrainOutcome(
                run_id=active.info.run_id,
                experiment_id=active.info.experiment_id,
                model_uri=uri,
                metrics=trained.metrics,
                predictions_sha256=fitted.predictions_sha256,
                tracking_uri=store,
            )
