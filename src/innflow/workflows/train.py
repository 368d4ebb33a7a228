"""`innflow train`: load and check the data, fit, evaluate, and record one complete run.

The run is opened first (the store's permission check, before any fitting); then the fit
runs in a worker thread while the main thread logs everything known up front (config,
provenance, datasets), so tracking costs little wall time on top of the fit itself.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innflow import tracking
from innflow.config import Config, flatten
from innflow.evaluation import plots, regression, report
from innflow.evaluation.assessment import Assessment
from innflow.monitoring import profile as profiles
from innflow.reproducibility import dvc, provenance
from innflow.steps.training import (
    Fitted,
    Prepared,
    Step,
    Trained,
    evaluate,
    fit,
    prepare,
    quiet,
    resolve_threads,
)


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
        "innflow.contract": prepared.contract.name,
        "innflow.contract_sha256": prepared.contract.sha256 or "",
        "innflow.config_sha256": config.digest(),
        "innflow.split": prepared.split.strategy,
        "innflow.known_later": str(config.features.allow_known_later).lower(),
        "innflow.threads": str(threads),
        **provenance.environment_tags(),
        **dvc.tags(config.data.path),
        **extra,
    }
    if prepared.split.strategy == "random":
        tags["innflow.warning"] = "random split: test metrics overstate out-of-time performance"
    artifacts = {"environment/installed.txt": provenance.installed_distributions()}
    if prepared.contract.text is not None:
        artifacts["data/contract.yaml"] = prepared.contract.text
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
    plot_dir = directory / "plots"
    plot_dir.mkdir()
    if fitted.threshold is None:
        _regression_plots(prepared, fitted, result, plot_dir)
    else:
        _classification_plots(prepared, fitted, result, plot_dir)
    plots.importance(
        result.importance, f"Feature importance: {result.importance_kind}",
        plot_dir / "feature_importance.png",
    )  # fmt: skip
    context = {
        "model kind": config.model.kind,
        "task": f"{prepared.contract.task} ({prepared.contract.target}, contract "
        f"{prepared.contract.name})",
        "data": f"{config.data.path} (sha256 {prepared.data_sha256[:16]}...)",
        "split": f"{prepared.split.strategy}: "
        + ", ".join(f"{k} {v:,}" for k, v in prepared.split.sizes().items()),
        "input columns": ", ".join(prepared.input_columns),
    }
    html = report.render(f"innflow evaluation: {config.model.kind}", result, plot_dir, context)
    (directory / "evaluation.html").write_text(html)
    return trained


def _classification_plots(
    prepared: Prepared, fitted: Fitted, result: Assessment, plot_dir: Path
) -> None:
    config = prepared.config
    y, p, t = prepared.labels("test"), fitted.test_scores, fitted.threshold
    assert t is not None
    plots.roc(y, p, plot_dir / "roc.png")
    plots.precision_recall(y, p, t, plot_dir / "precision_recall.png")
    plots.calibration(y, p, plot_dir / "calibration.png", config.evaluation.calibration_bins)
    plots.confusion(y, p, t, plot_dir / "confusion_matrix.png")
    if "test_cost_baseline" in result.metrics:
        plots.cost_curve(
            result.cost_curve, t, result.metrics["test_cost_baseline"], plot_dir / "cost_curve.png"
        )
    plots.slices(
        result.slices, result.metrics["test_roc_auc"], plot_dir / "slices.png",
        config.evaluation.slice_min_support,
    )  # fmt: skip


def _regression_plots(
    prepared: Prepared, fitted: Fitted, result: Assessment, plot_dir: Path
) -> None:
    ev = prepared.config.evaluation
    y, predicted = prepared.labels("test").astype("float64"), fitted.test_scores
    naive = regression.group_median_baseline(
        *prepared.fitted_on(), prepared.split.test, ev.baseline_groups
    )
    plots.predicted_vs_actual(y, predicted, naive, plot_dir / "predicted_vs_actual.png")
    plots.residuals(y, predicted, plot_dir / "residuals.png")
    plots.slice_errors(
        result.slices, result.metrics["test_rmse"], plot_dir / "slices.png",
        ev.slice_min_support,
    )  # fmt: skip


def _reference_profile(prepared: Prepared, fitted: Fitted) -> dict[str, Any]:
    """The monitoring profile logged with the model: the inputs of the window the logged
    model was fitted on, and the held-out test window's scores and outcomes (JSON form).
    """
    training = prepared.fitted_on()[0][prepared.input_columns]
    return profiles.build(
        training,
        fitted.test_scores,
        prepared.labels("test"),
        calibration_bins=prepared.config.evaluation.calibration_bins,
        contract=prepared.contract,
    ).to_dict()


def train(
    config: Config,
    threads: int | None = None,
    on_step: Step = quiet,
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
                target=str(prepared.contract.target),
            )
            fitted = fitting.result()
            on_step("evaluating (metrics, slices, explanations) while logging the model")
            with tempfile.TemporaryDirectory(prefix="innflow-evaluation-") as tmp:
                evaluating = pool.submit(_write_evaluation, prepared, fitted, Path(tmp))
                reference = _reference_profile(prepared, fitted)
                (Path(tmp) / "reference").mkdir()
                (Path(tmp) / "reference" / "profile.json").write_text(
                    json.dumps(reference, indent=1)
                )
                uri = tracking.log_model(
                    fitted.pipeline,
                    inputs=prepared.features("test"),
                    pip_requirements=_pip_requirements(config.model.kind),
                    metadata={
                        "innflow_task": prepared.contract.task,
                        # what serving checks requests against: the run's own contract
                        "innflow_contract": prepared.contract.text,
                        "innflow_threshold": fitted.threshold,
                        "innflow_model_kind": config.model.kind,
                        "innflow_predictions_sha256": fitted.predictions_sha256,
                        "innflow_input_columns": prepared.input_columns,
                        tracking.PROFILE_KEY: reference,
                    },
                    code_dir=Path(__file__).resolve().parents[1],
                    nullable=tuple(
                        c for c in prepared.input_columns if prepared.contract.columns[c].nullable
                    ),
                    environment=provenance.model_environment(),
                )
                trained = evaluating.result()
                sizes = {f"rows_{k}": float(v) for k, v in prepared.split.sizes().items()}
                timing = {f"duration_{k}_seconds": v for k, v in fitted.durations.items()}
                result_tags = {
                    "innflow.predictions_sha256": fitted.predictions_sha256,
                    "innflow.model_task": prepared.contract.task,
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
                if fitted.threshold is not None:
                    result_tags["innflow.threshold"] = repr(fitted.threshold)
                else:  # a regression has no audit of label purity and no cost curve
                    tables = {"evaluation/slices.json": trained.assessment.slices}
                tracking.log_results(metrics, result_tags, Path(tmp), tables)
            return TrainOutcome(
                run_id=active.info.run_id,
                experiment_id=active.info.experiment_id,
                model_uri=uri,
                metrics=trained.metrics,
                predictions_sha256=fitted.predictions_sha256,
                tracking_uri=store,
            )
