"""Prometheus metrics of one service instance (own registry, so tests and several apps in
one process do not collide).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServiceMetrics:
    """The service's counters, histogram and model-info gauge."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "innflow_requests",
            "Requests by endpoint and status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "innflow_request_duration_seconds", "Request latency.", ["endpoint"], registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.rows = Counter("innflow_rows_scored", "Bookings scored.", ["variant"], registry=r)
        self.decisions = Counter(
            "innflow_decisions", "Decisions by outcome.", ["variant", "decision"], registry=r
        )
        self.model = Gauge(
            "innflow_model_info",
            "The model being served.",
            ["name", "version", "alias", "run_id", "variant"],
            registry=r,
        )
        self.log_dropped = Counter(
            "innflow_prediction_log_dropped", "Scored bookings the log could not keep.", registry=r
        )
        self.predictor = Gauge(
            "innflow_predictor_info",
            "Which predictor scores each variant (state: compiled, exact, refused, "
            "failed; the exact path answers unless compiled).",
            ["variant", "version", "state"],
            registry=r,
        )
        self.degraded = Gauge(
            "innflow_degraded",
            "1 while the service is degraded for this reason (kind: confirmation, reload, "
            "prediction_log), 0 once resolved; /health says why.",
            ["kind"],
            registry=r,
        )
        self.degradations = Counter(
            "innflow_degradation_events",
            "Problems reported by kind (each failed confirmation, reload or log write).",
            ["kind"],
            registry=r,
        )
        self.body_bytes = Gauge(
            "innflow_request_body_bytes_in_flight",
            "Request-body bytes being held now (capped across requests).",
            registry=r,
        )
        self.reloads = Counter(
            "innflow_model_reloads", "Model (re)loads by outcome.", ["outcome"], registry=r
        )
        self.webhooks = Counter(
            "innflow_webhook_deliveries", "Verified MLflow webhook deliveries by what they "
            "asked (reload, prefetch, ignored).", ["outcome"], registry=r,
        )  # fmt: skip
