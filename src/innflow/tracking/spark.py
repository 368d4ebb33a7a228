"""The logged model on Spark: a session set up for scoring, and the model as MLflow's own
``spark_udf``, so a Spark job scores with exactly the pyfunc an MLflow client gets.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from innflow.tracking.logged_models import _load

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER_VARIABLE = "INNFLOW_SPARK_MASTER"


def spark_session() -> tuple[SparkSession, bool]:
    """The active Spark session, else a new one: (session, whether we created it).

    A new session runs on ``INNFLOW_SPARK_MASTER`` (default ``local[*]``), binds the driver
    to loopback unless a cluster master is given, has no UI, and runs its Python workers
    with this interpreter (Spark's default ``python3`` on the PATH may be another
    environment without the model's libraries).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    master = os.environ.get(MASTER_VARIABLE, "local[*]")
    # PySpark starts its workers with PYSPARK_PYTHON, else `python3` from PATH, whatever
    # the configuration below says: with the venv not activated (`.venv/bin/innflow`)
    # they would run another Python, without innflow ("No module named 'innflow'").
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("innflow-score")
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    return builder.getOrCreate(), True


def model_udf(spark: SparkSession, model_uri: str, regression: bool = False) -> Any:
    """The model as a Spark UDF answering both class probabilities (``array<double>``, as
    the pyfunc's ``predict_proba``), or a regression's number (``double``). It runs in
    this Python environment
    (``env_manager="local"``): the workers share the driver's interpreter and packages,
    so no per-job virtualenv is built.
    """
    import mlflow

    def udf(uri: str) -> Any:
        result = "double" if regression else "array<double>"
        return mlflow.pyfunc.spark_udf(spark, uri, result_type=result, env_manager="local")

    # MLflow warns that "local" does not rebuild the training environment: that is the
    # point here (innflow pins the environment with uv.lock and records it on the run).
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_logger.level
    pyfunc_logger.setLevel(logging.ERROR)
    try:
        return _load(udf, model_uri)
    finally:
        pyfunc_logger.setLevel(level)
