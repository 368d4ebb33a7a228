"""`innflow compare`: runs side by side, from ids or the top N of an experiment by a metric.

Fetches only what is shown: named runs one by one, or one ordered, limited search (MLflow's
search slows down when it pulls whole experiments: mlflow#2730).
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

import pandas as pd

from innflow import tracking
from innflow.errors import ConfigError
from innflow.reproducibility import comparison

SHOWN_PLOTS = ("roc.png", "calibration.png", "cost_curve.png", "feature_importance.png")


def _summary(run) -> comparison.RunSummary:
    return comparison.RunSummary(
        run.info.run_id, run.info.run_name or "", dict(run.data.params),
        dict(run.data.metrics), dict(run.data.tags),
    )  # fmt: skip


def collect(
    run_ids: list[str], experiment: str | None, top: int, metric: str, ascending: bool = False
) -> list[comparison.RunSummary]:
    """The runs to compare: the given ids, else the best ``top`` training runs by ``metric``."""
    tracking.connect(None)
    if run_ids:
        return [_summary(tracking.get_run(run_id)) for run_id in run_ids]
    if not experiment:
        raise ConfigError("give run ids, or --experiment to compare its best runs")
    runs = tracking.top_runs(experiment, metric, top, ascending)
    if not runs:
        raise ConfigError(
            f"no finished training run in experiment {experiment!r} has metric {metric!r}"
        )
    return [_summary(r) for r in runs]


def html_page(result: comparison.Comparison, names: dict[str, str]) -> str:
    """A self-contained page: metrics, differing params and fingerprints, and each run's plots."""

    def table(values: dict[str, dict]) -> str:
        frame = pd.DataFrame(values).T
        frame.columns = [f"{names.get(c, '')} {c[:8]}" for c in frame.columns]
        return frame.to_html(float_format=lambda v: f"{v:.4f}", border=0, na_rep="-")

    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in result.run_ids:
            cells = []
            for plot in SHOWN_PLOTS:
                path = tracking.download_artifact(run_id, f"plots/{plot}", Path(tmp) / run_id)
                if path is not None:
                    data = base64.b64encode(path.read_bytes()).decode()
                    cells.append(f'<img src="data:image/png;base64,{data}" width="280">')
            images.append(
                f"<h3>{html.escape(names.get(run_id, ''))} {run_id}</h3>" + "".join(cells)
            )
    return "\n".join(
        [
            "<html><head><meta charset='utf-8'><title>innflow compare</title><style>",
            "body{font-family:system-ui,sans-serif;margin:2em} table{border-collapse:collapse}",
            "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>",
            "<h1>innflow compare</h1><h2>Metrics</h2>", table(result.metrics),
            "<h2>Params that differ</h2>", table(result.params) if result.params else "<p>none</p>",
            "<h2>Fingerprints that differ</h2>",
            table(result.fingerprints) if result.fingerprints else "<p>none</p>",
            "<h2>Plots</h2>", *images, "</body></html>",
        ]
    )  # fmt: skip
