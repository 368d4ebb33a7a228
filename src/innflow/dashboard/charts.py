"""Dashboard charts as SVG images in the page (matplotlib's object API: thread-safe, no
files). As `<img src="data:...">` rather than inline `<svg>`: matplotlib styles every
element with a style attribute, which the page's Content-Security-Policy would block
(it allows no inline style); an image's styles stay inside the image.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

from matplotlib.figure import Figure


def _image(fig: Figure, alt: str) -> str:
    """The figure as an <img>; ``alt`` says what the image shows (its series by name)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class=chart alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{encoded}">'


def lines(
    title: str,
    x: Sequence[str],
    series: dict[str, Sequence[float | None]],
    ylabel: str,
    bands: Sequence[tuple[float, str]] = (),
) -> str:
    """One line per series over shared x labels, and optional horizontal reference lines:
    an <img> tag.
    """
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
    named = [name for name, values in series.items() if any(v is not None for v in values)]
    return _image(fig, f"{title}: {', '.join(named)}" if named else title)
