"""Dashboard charts as inline SVG (matplotlib's object API: thread-safe, no files)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure


def _svg(fig: Figure) -> str:
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is embedded in HTML


def lines(
    title: str,
    x: Sequence[str],
    series: dict[str, Sequence[float | None]],
    ylabel: str,
    bands: Sequence[tuple[float, str]] = (),
) -> str:
    """One line per series over shared x labels; optional horizontal reference lines."""
    fig = Figure(figsize=(7.5, 3.2))
    ax = fig.subplots()
    positions = list(range(len(x)))
    for name, values in series.items():
        points = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
    for level, label in bands:
        ax.axhline(level, linestyle="--", linewidth=0.8, color="grey")
        ax.annotate(label, (0, level), fontsize=7, color="grey", va="bottom")
    step = max(1, len(x) // 12)
    ax.set_xticks(positions[::step], list(x)[::step], rotation=30, ha="right", fontsize=7)
    ax.set(title=title, ylabel=ylabel)
    if series:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _svg(fig)
