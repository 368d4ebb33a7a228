"""A monitoring result as Prometheus metrics in the node exporter's textfile-collector
format (written atomically by prometheus_client, so the collector never reads half a file).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from innflow.monitoring.check import MonitorResult


def write_textfile(result: MonitorResult, model: dict[str, str], path: Path) -> None:
    """Write ``innflow_drift_psi{feature}``, ``innflow_monitor_status`` and friends."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    def put(target: Gauge, value: float, **labels: str) -> None:
        if not math.isnan(value):
            (target.labels(**labels) if labels else target).set(value)

    info = gauge("innflow_monitor_info", "The model monitored.", ("model", "version", "uri"))
    info.labels(model["name"], model["version"], model["uri"]).set(1)
    put(
        gauge("innflow_monitor_status", "0 healthy, 1 drift or decay (retrain)"),
        0.0 if result.healthy else 1.0,
    )
    put(
        gauge("innflow_monitor_drift", "1 when feature or prediction drift crossed a threshold"),
        float(result.drift),
    )
    put(
        gauge("innflow_monitor_decay", "1 when performance decayed past a threshold"),
        float(result.decay),
    )
    put(gauge("innflow_monitor_rows", "Bookings in the monitored batch"), float(result.rows))
    put(gauge("innflow_monitor_timestamp_seconds", "When the check ran"), time.time())
    psi = gauge("innflow_drift_psi", "Population stability index vs the reference", ("feature",))
    distance = gauge(
        "innflow_drift_distance",
        "Wasserstein (std units) or Jensen-Shannon",
        ("feature", "statistic"),
    )
    for d in result.features:
        put(psi, d.psi, feature=d.feature)
        put(distance, d.distance, feature=d.feature, statistic=d.statistic)
    put(
        gauge("innflow_prediction_psi", "PSI of the predicted probabilities"), result.prediction.psi
    )
    performance = gauge(
        "innflow_monitor_performance", "Performance on labelled rows", ("metric", "scope")
    )
    regression = result.reference is not None and hasattr(result.reference, "rmse")
    for name in ("rmse", "mae", "bias") if regression else ("roc_auc", "brier", "ece"):
        put(performance, (result.performance or {}).get(name, math.nan), metric=name, scope="batch")
        if result.reference is not None:
            put(performance, getattr(result.reference, name), metric=name, scope="reference")
    if result.variants is not None:
        auc = gauge(
            "innflow_variant_roc_auc",
            "ROC AUC per serving variant with its interval",
            ("variant", "version", "bound"),
        )
        for r in result.variants.itertuples():
            for bound, column in (
                ("estimate", "roc_auc"),
                ("low", "roc_auc_low"),
                ("high", "roc_auc_high"),
            ):
                put(
                    auc,
                    float(getattr(r, column)),
                    variant=str(r.variant),
                    version=str(r.model_version),
                    bound=bound,
                )
    write_to_textfile(str(path), registry)
