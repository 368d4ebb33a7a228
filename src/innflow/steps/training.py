"""The pure steps of a training run: prepare the data, fit, evaluate.

Every workflow that trains (train, tune, backtest, reproduce, simulate) calls these; none
of them opens a run or talks to MLflow, so they run and test without a tracking store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from innflow import data as bookings
from innflow.config import Config
from innflow.contract import Contract
from innflow.errors import ConfigError, DataValidationError
from innflow.evaluation import assessment, business
from innflow.evaluation.assessment import Assessment
from innflow.modeling import models
from innflow.reproducibility import provenance

Step = Callable[[str], None]


def quiet(_: str) -> None:
    """A step callback that reports nothing."""
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
    contract: Contract = bookings.CONTRACT

    def features(self, part: str) -> pd.DataFrame:
        """Model input (raw columns) of one split part."""
        return getattr(self.split, part)[self.input_columns]

    def labels(self, part: str) -> np.ndarray:
        """Labels (targets) of one split part."""
        return getattr(self.split, part)[self.contract.target].to_numpy()

    def fitted_on(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows the logged model learnt from (train, and validation when refitted)
        with their targets.
        """
        parts = ("train", "validation") if self.config.model.refit_on_validation else ("train",)
        frame = pd.concat([getattr(self.split, p) for p in parts])
        return frame, frame[self.contract.target].to_numpy()


def prepare(config: Config) -> Prepared:
    """Everything that can fail on bad input, done before any run is opened."""
    contract = bookings.contract_at(config.data.contract)
    if contract.target is None:
        raise ConfigError(f"{config.data.contract}: the contract names no target (target: COLUMN)")
    if (contract.task == "binary" and config.evaluation.threshold == "min_cost"
            and not business.applies(contract.columns)):  # fmt: skip
        raise ConfigError(
            f"evaluation.threshold min_cost weighs the bookings' cost, which needs the "
            f"columns {', '.join(business.COST_COLUMNS)}; contract {contract.name} lacks them: "
            "set evaluation.threshold=max_f1 (or a probability)"
        )
    if (contract.task == "binary" and "cost" in config.registry.gate.compare_metrics
            and not business.applies(contract.columns)):  # fmt: skip
        raise ConfigError(
            f"registry.gate.compare_metrics: cost is not measured for contract "
            f"{contract.name} (no {', '.join(business.COST_COLUMNS)})"
        )
    unknown = sorted(set(config.evaluation.baseline_groups) - set(contract.columns))
    if unknown:
        raise ConfigError(
            f"evaluation.baseline_groups: {', '.join(unknown)} not in the contract {contract.name}"
        )
    input_columns = bookings.input_columns(config.features, contract=contract)
    # validates model.params (and the kind for the task) early
    models.build_pipeline(config, input_columns, threads=1, contract=contract)
    path = config.data.path
    if not path.exists():
        raise DataValidationError(f"data file not found: {path}")
    sha = bookings.file_sha256(path)
    if config.data.sha256 and config.data.sha256 != sha:
        raise DataValidationError(
            f"{path} has sha256 {sha[:12]}..., "
            f"but data.sha256 requires {config.data.sha256[:12]}..."
        )
    frame = bookings.load_data(path, contract)
    parts = bookings.split(frame, config.split, config.seed, contract)
    return Prepared(config, sha, parts, input_columns, contract)


@dataclass(frozen=True)
class Fitted:
    """The model that will be logged, its threshold and its validation and test scores
    (probabilities of the positive class, or a regression's predicted numbers).
    """

    pipeline: Pipeline
    threshold: float | None  # None: a regression model decides nothing
    val_scores: np.ndarray
    test_scores: np.ndarray
    durations: dict[str, float]

    @property
    def predictions_sha256(self) -> str:
        """Fingerprint of the test-set scores."""
        return provenance.predictions_sha256(self.test_scores)


@dataclass
class Trained:
    """A fitted model and its assessment."""

    fitted: Fitted
    assessment: Assessment

    @property
    def metrics(self) -> dict[str, float]:
        """Every metric of the run."""
        return self.assessment.metrics


def fit(prepared: Prepared, threads: int, on_step: Step = quiet) -> Fitted:
    """Fit on train, choose the threshold on validation (binary), refit on train+validation
    (if configured), and score test with the model that will be logged.
    """
    config, cols, split = prepared.config, prepared.input_columns, prepared.split
    started = time.perf_counter()

    def build() -> Pipeline:
        return models.build_pipeline(config, cols, threads, prepared.contract)

    on_step(f"fitting {config.model.kind} on {len(split.train):,} rows")
    pipeline = models.fit(build(), prepared.features("train"), prepared.labels("train"), threads)
    val_scores = models.predict(pipeline, prepared.features("validation"), threads)
    y_val = prepared.labels("validation")
    threshold = None
    if prepared.contract.task == "binary":
        threshold = assessment.choose_threshold(config, y_val, val_scores, split.validation)
    if config.model.refit_on_validation:
        on_step("refitting on train + validation")
        both = pd.concat([prepared.features("train"), prepared.features("validation")])
        y_both = np.concatenate([prepared.labels("train"), y_val])
        pipeline = models.fit(build(), both, y_both, threads)
    test_scores = models.predict(pipeline, prepared.features("test"), threads)
    durations = {"fit": time.perf_counter() - started}
    return Fitted(pipeline, threshold, val_scores, test_scores, durations)


def evaluate(prepared: Prepared, fitted: Fitted) -> Trained:
    """Metrics, slices and explanations of a fitted model; for a binary one also its
    calibration, cost and the leakage audit.
    """
    split = prepared.split
    parts = {
        "val": (split.validation, prepared.labels("validation"), fitted.val_scores),
        "test": (split.test, prepared.labels("test"), fitted.test_scores),
    }
    if fitted.threshold is None:
        result = assessment.assess_regression(
            prepared.config, fitted.pipeline, parts, prepared.fitted_on(),
            prepared.input_columns, prepared.contract,
        )  # fmt: skip
        return Trained(fitted, result)
    result = assessment.assess(
        prepared.config, fitted.pipeline, fitted.threshold, parts, split.train,
        prepared.input_columns, prepared.contract,
    )  # fmt: skip
    return Trained(fitted, result)


def fit_and_evaluate(prepared: Prepared, threads: int, on_step: Step = quiet) -> Trained:
    """Fit, then assess: the whole computation of a training run, without tracking."""
    return evaluate(prepared, fit(prepared, threads, on_step))
