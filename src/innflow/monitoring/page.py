"""The monitoring report as one self-contained HTML page (plots embedded)."""

from __future__ import annotations

import base64
import html

import pandas as pd

from innflow.monitoring import plots
from innflow.monitoring.check import MonitorResult
from innflow.monitoring.settings import MonitoringConfig

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.alert{color:#b00;font-weight:bold} .ok{color:#070;font-weight:bold}
img{max-width:48%;margin:4px;border:1px solid #eee}
"""


def image(png: bytes, alt: str) -> str:
    """An embedded PNG."""
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame) -> str:
    """A frame as an HTML table, floats to 4 places."""
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, na_rep="-")


def document(title: str, body: list[str]) -> str:
    """A complete page around ``body``."""
    head = f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
    return "\n".join([head, f"<style>{_STYLE}</style></head><body>", *body, "</body></html>"])


def render(result: MonitorResult, context: dict[str, str], thresholds: MonitoringConfig) -> str:
    """Status and reasons, drift per feature, prediction drift, performance and variants."""
    css = "ok" if result.healthy else "alert"
    body = [
        "<h1>innflow monitoring</h1>",
        f"<p class='{css}'>status: {html.escape(result.status)}</p>",
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons) + "</ul>",
        table(pd.DataFrame({"": list(context), "value": list(context.values())})),
        "<h2>Drift</h2>",
        f"<p>PSI bands: stable &lt; {thresholds.psi_moderate} &le; moderate &lt; "
        f"{thresholds.psi_shift} &le; shift. Distance: Wasserstein in reference standard "
        "deviations for numbers, Jensen-Shannon (base 2) for categories.</p>",
        table(
            pd.DataFrame(
                [
                    {
                        "feature": d.feature,
                        "kind": d.kind,
                        "psi": d.psi,
                        "band": d.band,
                        "statistic": d.statistic,
                        "distance": d.distance,
                    }
                    for d in [result.prediction, *result.features]
                ]
            )
        ),
        image(
            plots.psi_bars(result.features, thresholds.psi_moderate, thresholds.psi_shift),
            "feature drift",
        ),
        image(plots.shares(result.prediction), "prediction drift"),
        *[image(plots.shares(d), d.feature) for d in result.features[:4]],
    ]
    if result.performance is not None:
        reference = result.reference.model_dump() if result.reference else {}
        rows = [
            {"metric": k, "this batch": v, "model's test": reference.get(k)}
            for k, v in result.performance.items()
        ]
        body += ["<h2>Performance on rows with a known outcome</h2>", table(pd.DataFrame(rows))]
    if result.variants is not None and len(result.variants):
        reference_auc = getattr(result.reference, "roc_auc", None)
        body += [
            "<h2>Serving variants</h2>",
            f"<p>ROC AUC with a {thresholds.confidence:.0%} bootstrap interval "
            f"({thresholds.bootstrap_rounds} resamples).</p>",
            table(result.variants),
            image(plots.variants(result.variants, reference_auc), "variants"),
        ]
    return document("innflow monitoring", body)


def simulation(months: pd.DataFrame, summary: pd.DataFrame, start: str, end: str) -> str:
    """The simulation on one page: the per-policy summary, the plot and every month."""
    body = [
        f"<h1>innflow simulate {start}..{end}</h1>",
        "<p>Each month the champion scores the month's arrivals; the policy decides at the "
        "start of the next month whether a challenger trained on everything before it "
        "should face the gate. A triangle marks a month served by a new champion.</p>",
        table(summary),
        image(plots.policies(months), "policies"),
        "<h2>Months</h2>",
        table(months),
    ]
    return document("innflow simulate", body)
