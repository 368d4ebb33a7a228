"""The one place that talks to MLflow: which store, what a training run records, how runs
and models are read back, and the registry. Each function encodes a decision (tags,
formats, refusals); callers never import mlflow themselves and use this package's surface.
"""

from innflow.tracking.logged_models import (
    MODEL_NAME,
    TRUSTED_PREFIXES,
    LoggedModelRef,
    describe_model,
    is_registry_uri,
    load_for_serving,
    load_pyfunc,
    log_model,
    logged_models_of,
    model_uri,
    run_tree,
    trusted_types,
)
from innflow.tracking.lookup import current_version, schema_revision
from innflow.tracking.monitoring import (
    MONITORING_EXPERIMENT,
    PROFILE_KEY,
    log_series,
    reference_profile,
)
from innflow.tracking.notebooks import (
    NOTEBOOK_RUN_ENV,
    adopt_training_result,
    kernel_environment,
    notebook_run_id,
)
from innflow.tracking.registry import (
    AUDIT_EXPERIMENT,
    alias_version,
    delete_alias,
    log_run_text,
    model_version,
    model_version_of,
    moves,
    record_move,
    register_version,
    set_alias,
    set_version_tags,
    versions,
)
from innflow.tracking.runs import (
    CONFIG_ARTIFACT,
    download_artifact,
    find_finished_run,
    get_run,
    log_child_run,
    log_datasets,
    log_params,
    log_results,
    log_setup,
    read_config_text,
    run,
    runs_of_kind,
    schema_sample,
    top_runs,
)
from innflow.tracking.spark import probability_udf, spark_session
from innflow.tracking.store import (
    DEFAULT_STORE,
    connect,
    mlflow_uri,
    resolve_store,
    store_identity,
)

__all__ = [
    "AUDIT_EXPERIMENT", "CONFIG_ARTIFACT", "DEFAULT_STORE", "MODEL_NAME",
    "MONITORING_EXPERIMENT", "NOTEBOOK_RUN_ENV", "PROFILE_KEY", "TRUSTED_PREFIXES",
    "LoggedModelRef",
    "adopt_training_result", "alias_version", "connect", "current_version", "delete_alias",
    "describe_model", "download_artifact", "find_finished_run", "get_run", "is_registry_uri",
    "kernel_environment", "load_for_serving", "load_pyfunc", "log_child_run", "log_datasets",
    "log_model", "logged_models_of", "log_params", "log_results", "log_run_text", "log_series", "log_setup",
    "mlflow_uri", "model_uri", "model_version", "model_version_of", "moves", "notebook_run_id",
    "probability_udf", "read_config_text", "record_move", "reference_profile",
    "register_version", "resolve_store", "run", "run_tree", "runs_of_kind", "schema_revision",
    "schema_sample", "set_alias", "set_version_tags", "spark_session", "store_identity",
    "top_runs", "trusted_types", "versions",
]  # fmt: skip
