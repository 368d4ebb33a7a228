"""Run configuration as validated, frozen data: YAML file + ``--set a.b=c`` overrides.

Every knob of a run lives here so that the resolved config, logged with the run, is enough
to re-execute it. Nothing here touches MLflow or the filesystem beyond reading the YAML.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from innflow.errors import ConfigError

ModelKind = Literal["logreg", "random_forest", "hist_gb", "lightgbm", "xgboost"]
MODEL_KINDS: tuple[str, ...] = ModelKind.__args__  # type: ignore[attr-defined]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Frozen):
    """Where the data come from, the contract they are held to and, optionally, the
    fingerprint they must have.
    """

    path: Path = Path("data/hotel_bookings.parquet")
    contract: Path | None = Field(
        default=None, description="the data contract (YAML); null: the bundled bookings'"
    )
    sha256: str | None = Field(default=None, description="refuse data whose sha256 differs")


class SplitConfig(_Frozen):
    """Out-of-time split by arrival date; a random split only when asked for explicitly."""

    strategy: Literal["time", "random"] = "time"
    validation_start: date = date(2016, 7, 1)
    test_start: date = date(2017, 1, 1)
    test_end: date | None = None
    random_validation_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    random_test_fraction: float = Field(default=0.2, gt=0, lt=0.5)

    @field_validator("test_start")
    @classmethod
    def _ordered(cls, test_start: date, info: Any) -> date:
        validation_start = info.data.get("validation_start")
        if validation_start is not None and test_start <= validation_start:
            raise ValueError("test_start must be after validation_start")
        return test_start


class FeaturesConfig(_Frozen):
    """Which raw columns the model may see, and how categories are grouped."""

    allow_known_later: bool = False
    include: list[str] | None = Field(
        default=None, description="explicit raw input columns; default: all booking-time ones"
    )
    exclude: list[str] | None = Field(
        default=None,
        description="raw columns the model never sees (date parts still derive features); "
        "null: the contract's exclude list",
    )
    rare_category_min_count: int = Field(default=20, ge=1)


class ModelConfig(_Frozen):
    """The estimator kind, its hyperparameters, and whether to refit on train+validation."""

    kind: ModelKind = "lightgbm"
    params: dict[str, Any] = Field(default_factory=dict)
    refit_on_validation: bool = True


class CostConfig(_Frozen):
    """The business view: what a missed cancellation and a false alarm cost."""

    unsold_fraction: float = Field(default=0.35, ge=0, le=1)
    walk_cost: float = Field(default=150.0, ge=0)


class EvaluationConfig(_Frozen):
    """Threshold choice (on validation, never on test), slices, calibration and audit."""

    threshold: Literal["max_f1", "min_cost"] | float = "min_cost"
    cost: CostConfig = CostConfig()
    slices: list[str] = Field(
        default_factory=lambda: [
            "hotel",
            "market_segment",
            "distribution_channel",
            "customer_type",
            "deposit_type",
            "lead_time_bucket",
        ]
    )
    slice_min_support: int = Field(default=200, ge=1)
    slice_max_auc_gap: float = Field(default=0.05, ge=0)
    slice_max_error_ratio: float = Field(
        default=0.25, ge=0, description="regression: flag a slice whose RMSE is this much worse"
    )
    baseline_groups: list[str] = Field(
        default_factory=list,
        description="regression: the naive baseline is the training median by these columns",
    )
    calibration_bins: int = Field(default=10, ge=2)
    audit_min_support: int = Field(default=500, ge=1)
    audit_max_purity: float = Field(default=0.99, gt=0.5, le=1)

    @field_validator("threshold")
    @classmethod
    def _in_unit_interval(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not 0.0 < value < 1.0:
            raise ValueError("threshold must be 'max_f1', 'min_cost' or a number in (0, 1)")
        return value


class ParamSpec(_Frozen):
    """One hyperparameter's search range."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @field_validator("choices")
    @classmethod
    def _non_empty(cls, choices: list[Any] | None) -> list[Any] | None:
        if choices is not None and not choices:
            raise ValueError("choices must not be empty")
        return choices


class TuningConfig(_Frozen):
    """Optuna search: objective on validation, budget, and the space (null: innflow's
    default space for the model kind).
    """

    objective: Literal["roc_auc", "log_loss", "cost", "rmse", "mae"] = "roc_auc"
    trials: int = Field(default=30, ge=1)
    timeout_seconds: float | None = Field(default=None, gt=0)
    pruning: bool = True
    report_every: int = Field(default=50, ge=1)
    search_space: dict[str, ParamSpec] | None = None


GateMetric = Literal["roc_auc", "pr_auc", "brier", "log_loss", "cost"]
_COMPARED: tuple[GateMetric, ...] = ("roc_auc", "brier")
RegressionMetric = Literal["rmse", "mae"]
_REGRESSION_COMPARED: tuple[RegressionMetric, ...] = ("rmse", "mae")


class GateConfig(_Frozen):
    """What a candidate must show before it may take an alias."""

    min_roc_auc: float = Field(default=0.80, ge=0, le=1)
    max_brier: float = Field(default=0.20, ge=0, le=1)
    # 2017 cancels more than the training years (0.387 vs 0.36): a sound model shows an
    # out-of-time ECE near 0.06, so the bar sits above that and catches real miscalibration.
    max_ece: float = Field(default=0.08, ge=0, le=1)
    slice_floor_roc_auc: float = Field(default=0.60, ge=0, le=1)
    slice_min_support: int = Field(default=200, ge=1)
    compare_metrics: list[GateMetric] = Field(default_factory=lambda: list(_COMPARED))
    margin: float = Field(default=0.005, ge=0, description="tolerated loss vs the champion")
    # Regression models: bars on the test window, and the comparison in relative terms
    # (an error in euros has no scale-free margin).
    min_r2: float = Field(default=0.0, le=1, description="regression: minimum test R²")
    max_rmse: float | None = Field(default=None, gt=0, description="regression: maximum RMSE")
    beat_baseline: bool = Field(
        default=True, description="regression: RMSE below the naive baseline's"
    )
    regression_compare: list[RegressionMetric] = Field(
        default_factory=lambda: list(_REGRESSION_COMPARED)
    )
    relative_margin: float = Field(
        default=0.01, ge=0, description="regression: tolerated loss vs the champion, a fraction"
    )


class RegistryConfig(_Frozen):
    """The registered model and its promotion gate."""

    model_name: str = Field(default="hotel-booking-cancellation", min_length=1)
    gate: GateConfig = GateConfig()


class TrackingConfig(_Frozen):
    """Where runs go. ``uri`` null means MLFLOW_TRACKING_URI, else the embedded SQLite store."""

    uri: str | None = None
    experiment: str = "hotel-cancellation"
    run_name: str | None = None


class MonitoringConfig(_Frozen):
    """When drift or decay counts as an alert (exit 4, the retraining trigger)."""

    psi_moderate: float = Field(default=0.10, gt=0, description="PSI band: moderate shift")
    psi_shift: float = Field(default=0.25, gt=0, description="PSI band: significant shift")
    max_shifted_features: int = Field(
        default=0, ge=0, description="drift when more features than this reach psi_shift"
    )
    prediction_psi_shift: float = Field(default=0.25, gt=0)
    max_roc_auc_drop: float = Field(default=0.03, ge=0, description="vs the model's test ROC AUC")
    max_brier_rise: float = Field(default=0.03, ge=0, description="vs the model's test Brier")
    max_ece_rise: float = Field(default=0.05, ge=0, description="vs the model's test ECE")
    max_rmse_rise: float = Field(
        default=0.15, ge=0, description="regression: RMSE this fraction above the model's test"
    )
    max_bias_shift: float = Field(
        default=0.10, ge=0,
        description="regression: mean error this fraction of the target's mean from the test's",
    )  # fmt: skip
    min_labelled_rows: int = Field(
        default=200, ge=1, description="performance is judged only on this many outcomes"
    )
    bootstrap_rounds: int = Field(default=200, ge=10)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    calibration_bins: int = Field(default=10, ge=2)
    seed: int = 42


class Config(_Frozen):
    """A complete, validated innflow run configuration."""

    seed: int = 42
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tuning: TuningConfig = TuningConfig()
    registry: RegistryConfig = RegistryConfig()
    tracking: TrackingConfig = TrackingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, as logged with the run."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved config as YAML, the form written next to every run."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """sha256 of what defines the result (tracking and monitoring settings excluded)."""
        payload = {k: v for k, v in self.to_dict().items() if k not in ("tracking", "monitoring")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys (``model.params.learning_rate``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _apply_override(tree: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not of the form key=value")
    dotted, raw = assignment.split("=", 1)
    keys = dotted.strip().split(".")
    if not all(keys):
        raise ConfigError(f"override {assignment!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {assignment!r}: value is not valid YAML") from e
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {assignment!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            problems.append(f"'{where}': {item['msg']}")
    return "invalid config: " + "; ".join(problems)


def from_dict(tree: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Validate a config tree after applying ``key=value`` overrides."""
    tree = json.loads(json.dumps(tree, default=str))  # deep copy, dates as strings
    for assignment in overrides:
        _apply_override(tree, assignment)
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from e


def load(path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        tree = loaded or {}
    return from_dict(tree, overrides)
