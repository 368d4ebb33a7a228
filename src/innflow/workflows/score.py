"""Batch scoring of a file under its model's contract, in this process or on Spark.

Both engines write the same columns: the input, then a binary model's ``probability``
(of the positive class) and ``likely_cancel`` (at the model's threshold) or a regression's
``prediction``, then ``model_version`` and ``error``. A row that
breaks the schema is kept, unscored, with its reason in ``error``: never dropped. A model
innflow did not train (the general path, local engine) is held to its signature and
writes its own output columns: ``probability``/``likely_cancel`` for two classes'
probabilities, ``prediction`` otherwise.

Scored from a start-up snapshot (the registry confirmed its version and run), the
registered model itself is loaded meanwhile, in a background thread: a snapshot is a
cache, and a registered artifact that no longer loads (corrupted, deleted) is reported
(``source_error``) instead of going unnoticed until the next service start. The check
costs about the load the snapshot saves; ``check_source=False`` skips it.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from innflow import data, tracking
from innflow.contract import Contract
from innflow.contract.bookings import of_model
from innflow.errors import ConfigError, DataValidationError, InnflowError
from innflow.serving import core
from innflow.serving.general import ModelFailed
from innflow.serving.loading import confirmed, load

ENGINES = ("local", "spark")
ROW_ID = "__innflow_row"


@dataclass(frozen=True)
class ScoreOutcome:
    """What `innflow score` did."""

    rows: int
    scored: int
    rejected: int
    seconds: float
    model_version: str
    predictor: str = "exact"
    model_seconds: float = 0.0  # of ``seconds``: resolving and loading the model
    origin: str = "registry"  # "snapshot": scored from its start-up snapshot
    source_error: str | None = None  # the snapshot's registered model could not be loaded
    source_checked: bool = False  # a snapshot's registered model was loaded to check it


def score_file(
    model_uri: str, source: Path, target: Path, engine: str = "local", check_source: bool = True
) -> ScoreOutcome:
    """Score a parquet/CSV file with the given engine; invalid rows are kept with a reason.
    ``check_source``: scoring from a start-up snapshot, load its registered model meanwhile
    and report it when it does not load.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "spark":
        return _score_spark(model_uri, Path(source), Path(target))
    return _score_local(model_uri, Path(source), Path(target), check_source)


def _score_local(
    model_uri: str, source: Path, target: Path, check_source: bool = True
) -> ScoreOutcome:
    started = time.perf_counter()
    # The snapshot when the registry confirms it (no pipeline to unpickle), else the logged
    # model with a cached compiled predictor only: a compile costs more than it saves here.
    model = confirmed(model_uri)
    check, origin = None, "registry"
    if model is None:
        model = load(model_uri, compile="cached")
    else:
        origin = "snapshot"
        if check_source:
            check = SourceCheck(model.description.get("resolved_uri") or model_uri)
    if model.general is not None:
        return _score_general(model, source, target, started)
    # The service scores a few rows per request single-threaded; a file is one big batch.
    if model.fast is not None:
        model.fast.threads = os.cpu_count() or 1
    if model.pipeline is not None:
        from innflow.modeling import models

        if models.pipeline_kind(model.pipeline) in ("lightgbm", "xgboost"):
            model.pipeline.set_params(model__n_jobs=os.cpu_count() or 1)
    loaded = time.perf_counter()
    frame = data.read_table(source)
    _require_columns(source, frame.columns, model.columns)
    inputs = frame[model.columns]
    reasons = core.row_errors(inputs, model.columns, model.contract)
    good = reasons == ""
    if model.regression:
        return _score_regression(model, frame, good, reasons, target, started, loaded, check)
    probability = np.full(len(frame), np.nan)
    if good.any():  # the service's path: pandas-free when the model kind allows, same numbers
        proba, _ = core.score(model, core.columns_of(inputs[good], model.columns))
        probability[good] = proba[:, 1]
    out = frame.copy()
    out["probability"] = probability
    decision = pd.array(probability >= model.threshold, dtype="boolean")
    decision[~good] = pd.NA
    out["likely_cancel"] = decision
    out["model_version"] = model.version
    out["error"] = reasons
    _write(out, target)
    source_error = check.wait() if check is not None else None
    seconds = time.perf_counter() - started
    return ScoreOutcome(
        len(frame), int(good.sum()), int((~good).sum()), seconds, model.version,
        model.predictor["state"], loaded - started,
        origin, source_error, check is not None,
    )  # fmt: skip


def _score_regression(
    model: core.LoadedModel, frame: pd.DataFrame, good: np.ndarray, reasons: np.ndarray,
    target: Path, started: float, loaded: float, check: SourceCheck | None,
) -> ScoreOutcome:  # fmt: skip
    """A regression model's ``prediction`` for every valid row (bad rows kept, no value)."""
    prediction = pd.Series(pd.NA, index=frame.index, dtype="Float64")
    if good.any():
        inputs = frame.loc[good, model.columns]
        prediction[good] = core.predict(model, core.columns_of(inputs, model.columns)).raw
    out = frame.copy()
    out["prediction"] = prediction
    out["model_version"] = model.version
    out["error"] = reasons
    _write(out, target)
    source_error = check.wait() if check is not None else None
    return ScoreOutcome(
        len(frame), int(good.sum()), int((~good).sum()), time.perf_counter() - started,
        model.version, model.predictor["state"], loaded - started, "registry", source_error,
        check is not None,
    )  # fmt: skip


class SourceCheck:
    """Load a snapshot's registered model in the background, while the file is scored
    from the snapshot: ``wait`` gives None, or why it could not be loaded.
    """

    def __init__(self, resolved_uri: str) -> None:
        self.resolved_uri = resolved_uri
        self.problem: str | None = None
        self._thread = threading.Thread(target=self._load, name="innflow-source-check")
        self._thread.start()

    def _load(self) -> None:
        try:
            tracking.connect(None)
            tracking.load_for_serving(self.resolved_uri)
        except InnflowError as e:  # reported beside the scores, which stand
            self.problem = str(e)[:500]
        except Exception as e:
            self.problem = f"{type(e).__name__}: {e}"[:500]

    def wait(self) -> str | None:
        """Why the registered model could not be loaded, once the load has ended."""
        self._thread.join()
        return self.problem


def _score_general(
    model: core.LoadedModel, source: Path, target: Path, started: float
) -> ScoreOutcome:
    """A general model over a file: rows that break its signature kept with the reason,
    the others scored in one call of its pyfunc.
    """
    assert model.general is not None
    loaded = time.perf_counter()
    frame = data.read_table(source)
    missing = model.general.schema.missing(frame.columns)
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {', '.join(missing)}")
    present = model.general.schema.file_columns(frame)
    problems, good, typed = model.general.schema.convert(present, len(frame), len(frame))
    reasons = np.full(len(frame), "", dtype=object)
    for row, column, problem in sorted(problems, reverse=True):  # the first column's wins
        reasons[row] = f"{column}: {problem}"
    out = frame.copy()
    if good.any():
        model_input = model.general.frame({c: v[good] for c, v in typed.items()})
        try:
            outputs = model.general.outputs(
                model.general.predict(model_input.reset_index(drop=True)), int(good.sum())
            )
        except ModelFailed as e:
            raise DataValidationError(f"the model could not score {source}: {e}") from e
    elif model.general.probabilities:
        outputs = {"probability": np.array([], dtype="float64"),
                   "likely_cancel": np.array([], dtype=bool)}  # fmt: skip
    else:
        outputs = {"prediction": np.array([], dtype="float64")}
    for name, values in outputs.items():
        written = pd.Series(pd.NA, index=frame.index, dtype=_dtype_of(values))
        written[good] = values
        out[name] = written
    out["model_version"] = model.version
    out["error"] = reasons
    _write(out, target)
    seconds = time.perf_counter() - started
    return ScoreOutcome(
        len(frame), int(good.sum()), int((~good).sum()), seconds, model.version,
        model.predictor["state"], loaded - started,
    )  # fmt: skip


def _dtype_of(values: Any) -> str:
    """A nullable column type for an output (bad rows get no value)."""
    kind = np.asarray(values).dtype.kind
    return {"b": "boolean", "i": "Int64", "u": "Int64", "f": "Float64"}.get(kind, "object")


def _write(out: pd.DataFrame, target: Path) -> None:
    if _is_parquet(target):
        out.to_parquet(target, index=False)
    else:
        out.to_csv(target, index=False)


def _score_spark(model_uri: str, source: Path, target: Path) -> ScoreOutcome:
    """The same rules as the local engine as a Spark plan: validate each Arrow batch with
    the service's checks, score the valid rows with ``mlflow.pyfunc.spark_udf``, keep the
    rest with their reason, and write Spark's usual directory of part files.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    started = time.perf_counter()
    if not source.exists():
        raise DataValidationError(f"data file not found: {source}")
    _refuse_to_clobber(target)
    tracking.connect(None)
    described = tracking.describe_model(model_uri)
    metadata = described.get("metadata", {})
    columns = list(metadata.get("innflow_input_columns") or [])
    if not columns:
        raise DataValidationError(
            f"{model_uri} was not trained by innflow: the Spark engine scores innflow's own "
            "models; score it with --engine local"
        )
    contract = of_model(metadata)
    regression = metadata.get("innflow_task", "binary") == "regression"
    threshold = float(metadata.get("innflow_threshold") or 0.5)
    version = str(described.get("version") or described["uri"])
    with _pyspark_on_pandas_3():
        spark, created = tracking.spark_session()
        try:
            try:
                if _is_parquet(source):
                    frame = spark.read.parquet(str(source))
                else:
                    frame = spark.read.csv(str(source), header=True, inferSchema=True)
            except AnalysisException as e:
                raise DataValidationError(f"{source} is not readable by Spark: {e}") from e
            _require_columns(source, frame.columns, columns)
            inputs = frame.columns
            indexed = frame.withColumn(ROW_ID, F.monotonically_increasing_id())
            with_error = StructType([*indexed.schema.fields, StructField("error", StringType())])
            checked = indexed.mapInPandas(_validator(columns, contract), with_error)
            predict = tracking.model_udf(spark, described["resolved_uri"], regression)
            # typed as the signature says: Spark hands a nullable integer column to pandas
            # as Int64, which MLflow's schema check refuses for a `double` input
            typed = _signature_types(described.get("signature"))
            answer = predict(F.struct(*(
                F.col(c).cast(typed[c]).alias(c) if c in typed else F.col(c) for c in columns
            )))  # fmt: skip
            value, outputs = ("prediction", ["prediction"]) if regression else (
                "probability", ["probability", "likely_cancel"])  # fmt: skip
            good = checked.filter(F.col("error") == "").withColumn(
                value, answer if regression else answer.getItem(1)
            )
            bad = checked.filter(F.col("error") != "").withColumn(value, F.lit(None).cast("double"))
            out = good.unionByName(bad)
            if not regression:
                out = out.withColumn("likely_cancel", F.col("probability") >= F.lit(threshold))
            out = (
                out.withColumn("model_version", F.lit(version))
                .orderBy(ROW_ID)
                .select(*inputs, *outputs, "model_version", "error")
            )
            if _is_parquet(target):
                out.write.mode("overwrite").parquet(str(target))
                written = spark.read.parquet(str(target))
            else:
                out.write.mode("overwrite").csv(str(target), header=True)
                written = spark.read.csv(str(target), header=True)
            counts = {
                bool(row["ok"]): int(row["count"])
                for row in written.groupBy((F.col("error") == "").alias("ok")).count().collect()
            }
        finally:
            if created:
                spark.stop()
    scored, rejected = counts.get(True, 0), counts.get(False, 0)
    seconds = time.perf_counter() - started
    return ScoreOutcome(scored + rejected, scored, rejected, seconds, version)


_SPARK_TYPES = {"double": "double", "float": "float", "long": "bigint", "integer": "int"}


def _signature_types(signature: dict[str, Any] | None) -> dict[str, str]:
    """The Spark type of each numeric input of a logged model's signature."""
    if not signature or not signature.get("inputs"):
        return {}
    specs = json.loads(signature["inputs"])
    return {s["name"]: _SPARK_TYPES[s["type"]] for s in specs if s.get("type") in _SPARK_TYPES}


def _validator(columns: list[str], contract: Contract) -> Any:
    """The per-batch check Spark runs on its workers (the same rules as the local engine,
    under the model's own contract).
    """

    def validate(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            batch["error"] = core.row_errors(batch[columns], columns, contract).astype(str)
            yield batch

    return validate


def _require_columns(source: Path, present: Any, columns: list[str]) -> None:
    missing = [c for c in columns if c not in set(present)]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {', '.join(missing)}")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _refuse_to_clobber(target: Path) -> None:
    """Spark replaces the whole output directory; only an earlier Spark output may go."""
    if target.is_file() or (target.is_dir() and not (target / "_SUCCESS").exists()):
        raise DataValidationError(
            f"{target} exists and is not an earlier Spark output; choose a new path"
        )


class _pyspark_on_pandas_3(warnings.catch_warnings):
    """PySpark warns on every pandas conversion that it has not been certified on pandas 3;
    innflow's tests compare the Spark engine's results with the local engine's instead.
    """

    def __enter__(self) -> None:
        super().__enter__()
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
