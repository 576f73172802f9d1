"""Server-side charts: the geometry of small SVG bar charts, drawn by a template.

No JavaScript and no library: a manager's browser gets plain SVG that prints,
and the numbers sit in each bar's <title> for screen readers and tooltips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 200, 44, 22, 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    line: str  # SVG polyline points of the second series ("" when none)
    line_label: str
    ticks: list[tuple[float, str]]  # (y, text) of the value axis
    labels: list[tuple[float, str]]  # (x, text) under each slot
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = HEIGHT - BOTTOM


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float | None], *,
              fmt=lambda v: f"{v:.1f}", line: Sequence[float | None] = (), line_label: str = "") -> Chart:
    """Bars for `values` (None draws nothing), optionally a line for a second
    series on the same scale (e.g. 90th percentile over the average)."""
    top = max([v for v in (*values, *line) if v is not None] or [0]) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(labels))

    def y(value: float) -> float:
        return round(HEIGHT - BOTTOM - plot_h * value / top, 1)

    bars = [Bar(x=round(LEFT + i * slot + slot * 0.15, 1), y=y(v), width=round(slot * 0.7, 1),
                height=round(HEIGHT - BOTTOM - y(v), 1), label=label, text=fmt(v))
            for i, (label, v) in enumerate(zip(labels, values)) if v is not None]
    points = " ".join(f"{round(LEFT + (i + 0.5) * slot, 1)},{y(v)}"
                      for i, v in enumerate(line) if v is not None)
    ticks = [(y(top * k / 2), fmt(top * k / 2)) for k in (0, 1, 2)]
    under = [(round(LEFT + (i + 0.5) * slot, 1), label) for i, label in enumerate(labels)]
    return Chart(title=title, bars=bars, line=points, line_label=line_label, ticks=ticks, labels=under)
