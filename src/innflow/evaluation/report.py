"""The one-page `evaluation.html`: metrics, cost, calibration, slices, audit and plots,
self-contained (plots embedded) so it opens from the MLflow UI or a mail attachment.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from innflow.evaluation.assessment import Assessment

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.flag{color:#b00;font-weight:bold} img{max-width:48%;margin:4px;border:1px solid #eee}
"""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, escape=True)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _flag_line(label: str, items: list[str]) -> str:
    return f"<p class='flag'>{label}: {html.escape(', '.join(items))}</p>" if items else ""


CLASSIFICATION = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "accuracy", "f1",
                  "precision", "recall")  # fmt: skip
REGRESSION = ("rmse", "mae", "r2", "bias", "baseline_rmse", "baseline_mae", "baseline_r2",
              "rmse_vs_baseline")  # fmt: skip


def render(title: str, assessment: Assessment, plot_dir: Path, context: dict[str, str]) -> str:
    """HTML for one training run's evaluation."""
    m = assessment.metrics
    regression = assessment.threshold is None
    names = [n for n in (REGRESSION if regression else CLASSIFICATION) if f"test_{n}" in m]
    metrics = pd.DataFrame(
        {
            "metric": names,
            "validation": [m.get(f"val_{n}", float("nan")) for n in names],
            "test": [m[f"test_{n}"] for n in names],
        }
    )
    top = assessment.importance.head(25)
    flagged = assessment.flagged_slices()
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        _table(pd.DataFrame({"": list(context), "value": list(context.values())})),
    ]
    if regression:
        parts += [
            "<h2>Metrics</h2>",
            "<p>baseline: the training median of the target by "
            "evaluation.baseline_groups; bias: mean of predicted - actual.</p>",
            _table(metrics),
        ]
    elif "val_cost" not in m:  # a data set without the bookings' cost columns
        parts += [
            f"<h2>Metrics (threshold {assessment.threshold:.3f}, chosen on validation)</h2>",
            _table(metrics),
        ]
    else:
        cost = pd.DataFrame(
            {
                "set": ["validation", "test"],
                "cost at threshold": [m["val_cost"], m["test_cost"]],
                "flag nobody": [m["val_cost_baseline"], m["test_cost_baseline"]],
                "saving": [m["val_cost_saving"], m["test_cost_saving"]],
                "saving share": [m["val_cost_saving_share"], m["test_cost_saving_share"]],
            }
        )
        parts += [
            f"<h2>Metrics (threshold {assessment.threshold:.3f}, chosen on validation)</h2>",
            _table(metrics),
            "<h2>Business cost</h2>",
            "<p>Missed cancellation: revenue x unsold fraction; false alarm: walking a guest.</p>",
            _table(cost),
        ]
    parts += [
        "<h2>Slices (test)</h2>",
        _flag_line("Flagged", flagged) or "<p>No slice flagged.</p>",
        _table(assessment.slices),
    ]
    if not regression:
        parts += [
            "<h2>Leakage audit (training data)</h2>",
            "<p>Conditions that separate the label almost perfectly on large support.</p>",
            _flag_line("Used by this model", assessment.flagged_audit()),
            _table(assessment.audit),
        ]
    parts += [
        f"<h2>Explanations: {html.escape(assessment.importance_kind)}</h2>",
        _table(pd.DataFrame({"feature": top.index, "importance": top.to_numpy()})),
        "<h2>Plots</h2>",
        "".join(_image(p) for p in sorted(plot_dir.glob("*.png"))),
        "</body></html>",
    ]  # fmt: skip
    return "\n".join(parts)
