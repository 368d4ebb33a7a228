"""Render the dashboard's data as one self-contained HTML page (no scripts from the net)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from innflow.dashboard.charts import lines

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:.4em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left} th{background:#f3f3f3}
.alias{display:inline-block;background:#e8f0fe;border-radius:3px;padding:0 5px;margin:1px}
.bad{color:#b00;font-weight:bold} .good{color:#070} .muted{color:#777}
.chart{display:block;max-width:100%}
"""
# Every <style> the page has: the Content-Security-Policy allows these by hash, no other.
STYLES = (_STYLE,)
_DRIFT_BANDS = ((0.1, "PSI 0.1: moderate"), (0.25, "PSI 0.25: significant"))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _when(start_ms: int) -> str:
    return datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _versions(data: dict[str, Any]) -> str:
    versions = data["versions"]
    if not versions:
        return "<p class=muted>No registered versions yet: run <code>innflow pipeline</code>.</p>"
    aliases = {a: v["version"] for v in versions for a in v["aliases"].split(",") if a}
    now = " ".join(
        f"<span class=alias>{_e(a)} &rarr; v{_e(v)}</span>" for a, v in sorted(aliases.items())
    )
    # The two key figures listing() gives: a classifier's ROC AUC and Brier, a regression
    # model's RMSE and R².
    first, second = (("test_rmse", "RMSE"), ("test_r2", "R²")) if "test_rmse" in versions[0] \
        else (("test_roc_auc", "ROC AUC"), ("test_brier", "Brier"))  # fmt: skip
    rows = [
        [f"v{_e(v['version'])}",
         " ".join(f"<span class=alias>{_e(a)}</span>" for a in v["aliases"].split(",") if a),
         f"<span class={'good' if v['gate'] == 'passed' else 'bad'}>{_e(v['gate'])}</span>",
         _e(v["model_kind"]), _e(v.get(first[0], "")), _e(v.get(second[0], "")),
         _e(v["approved_by"]), f"<code>{_e(v['run_id'][:12])}</code>"]
        for v in versions
    ]  # fmt: skip
    ordered = sorted(versions, key=lambda v: int(v["version"]))
    chart = lines(
        "test metrics by version",
        [f"v{v['version']}" for v in ordered],
        {first[1]: [_float(v.get(first[0], "")) for v in ordered],
         second[1]: [_float(v.get(second[0], "")) for v in ordered]},
        ylabel="",
    )  # fmt: skip
    table = _table(
        ["version", "aliases", "gate", "kind", f"test {first[1]}", f"test {second[1]}",
         "approved by", "run"],
        rows,
    )  # fmt: skip
    return f"<p>Now: {now or '<span class=muted>no aliases set</span>'}</p>{table}{chart}"


def _version(number: Any) -> str:
    return "none" if number in (None, "", "none") else f"v{_e(number)}"


def _moves(data: dict[str, Any]) -> str:
    moves = data["moves"]
    if not moves:
        return "<p class=muted>No alias moves recorded yet.</p>"
    rows = [
        [_e(m.get("at")), _e(m.get("alias")),
         f"{_version(m.get('from_version'))} &rarr; {_version(m.get('to_version'))}",
         _e(m.get("kind")), _e(m.get("who")),
         _e(m.get("why")), _e(m.get("gate")), _e(m.get("forced"))]
        for m in reversed(moves)
    ]  # fmt: skip
    return _table(["at", "alias", "move", "kind", "who", "why", "gate", "forced"], rows)


def _monitoring(data: dict[str, Any]) -> str:
    runs = data["monitoring"]
    if not runs:
        return "<p class=muted>No monitoring runs yet: run <code>innflow monitor</code>.</p>"
    x = [_when(r["start_time"]) for r in runs]
    psi = sorted({k for r in runs for k in r["metrics"] if k.startswith("psi.")})
    worst = sorted(psi, key=lambda k: -max(r["metrics"].get(k, 0.0) for r in runs))[:6]
    drift = lines(
        "drift by feature (PSI)", x,
        {k.removeprefix("psi."): [r["metrics"].get(k) for r in runs] for k in worst},
        ylabel="PSI", bands=_DRIFT_BANDS,
    )  # fmt: skip
    perf_keys = [k for k in ("roc_auc", "brier", "ece") if any(k in r["metrics"] for r in runs)]
    perf = (
        lines("performance on settled bookings", x,
              {k: [r["metrics"].get(k) for r in runs] for k in perf_keys}, ylabel="")
        if perf_keys else ""
    )  # fmt: skip
    rows = [_monitoring_row(r) for r in reversed(runs[-20:])]
    table = _table(["at", "version", "status", "max PSI", "ROC AUC"], rows)
    return drift + perf + table


def _monitoring_row(run: dict[str, Any]) -> list[str]:
    status = run["tags"].get("innflow.status", "")
    worst = max((v for k, v in run["metrics"].items() if k.startswith("psi.")), default=0.0)
    css = "good" if status in ("", "healthy") else "bad"
    return [
        _e(_when(run["start_time"])), _e(run["tags"].get("innflow.model_version")),
        f"<span class={css}>{_e(status)}</span>", f"{worst:.3f}",
        _e(run["metrics"].get("roc_auc", "")),
    ]  # fmt: skip


def _simulations(data: dict[str, Any]) -> str:
    sims = data["simulations"]
    if not sims:
        return "<p class=muted>No simulations yet: run <code>innflow simulate</code>.</p>"
    latest = sims[0]
    policies = sorted({k.split(".")[1] for k in latest["metrics"] if k.startswith("policy.")})
    rows = [
        [_e(p)] + [_e(f"{latest['metrics'][f'policy.{p}.{m}']:.4f}")
                   if f"policy.{p}.{m}" in latest["metrics"] else "" for m in
                   ("mean_roc_auc", "mean_roc_auc_2017", "total_cost", "retrains")]
        for p in policies
    ]  # fmt: skip
    run, at = _e(latest["run_id"][:12]), _e(_when(latest["start_time"]))
    head = f"<p>Latest: run <code>{run}</code>, {at}</p>"
    return head + _table(
        ["policy", "mean ROC AUC", "2017 mean ROC AUC", "total cost", "retrains"], rows
    )


def render(data: dict[str, Any]) -> str:
    """The whole page."""
    sections = [
        ("Versions and aliases", _versions(data)),
        ("Alias history", _moves(data)),
        ("Monitoring", _monitoring(data)),
        ("Retraining policies (simulation)", _simulations(data)),
    ]
    body = "".join(f"<section><h2>{t}</h2>{s}</section>" for t, s in sections)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>innflow: {_e(data['model'])}</title><style>{_STYLE}</style></head><body>"
        f"<h1>innflow &middot; {_e(data['model'])}</h1>"
        f"<p class=muted>tracking store {_e(data['tracking_uri'])} &middot; "
        f"generated {_e(data['generated_at'])}</p>{body}</body></html>"
    )
