"""The runs page's chart, drawn on the server as inline SVG: per run, a bar of the orders it
settled and a bar of how long it took, each against its own scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 200
TOP, BOTTOM, LEFT, RIGHT = 20, 30, 10, 10


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # the run's id
    orders: int
    seconds: float


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def runs_chart(bars: Sequence[Bar]) -> str:
    """An <svg> of the runs, oldest on the left; empty when there is no run."""
    if not bars:
        return ""
    most_orders = max(1, *(bar.orders for bar in bars))
    longest = max(0.001, *(bar.seconds for bar in bars))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(bars)
    width = max(1.0, min(slot * 0.4, 24.0))
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>Orders and duration of the last {len(bars)} runs</title>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'class="axis"/>',
    ]
    for index, bar in enumerate(bars):
        x = LEFT + index * slot + slot * 0.1
        orders_h = plot_h * bar.orders / most_orders
        seconds_h = plot_h * bar.seconds / longest
        label = escape(bar.label)
        parts.append(
            f'<rect class="orders" x="{x:.1f}" y="{TOP + plot_h - orders_h:.1f}" '
            f'width="{width:.1f}" height="{orders_h:.1f}">'
            f"<title>run {label}: {bar.orders} orders</title></rect>"
        )
        parts.append(
            f'<rect class="seconds" x="{x + width:.1f}" y="{TOP + plot_h - seconds_h:.1f}" '
            f'width="{width:.1f}" height="{seconds_h:.1f}">'
            f"<title>run {label}: {_seconds(bar.seconds)}</title></rect>"
        )
        if len(bars) <= 25 or index % max(1, len(bars) // 10) == 0:
            parts.append(
                f'<text x="{x + width:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{label}</text>'
            )
    parts.append(
        f'<text x="{LEFT}" y="14" class="legend-orders">■ orders (max {most_orders})</text>'
        f'<text x="{LEFT + 200}" y="14" class="legend-seconds">'
        f"■ duration (max {_seconds(longest)})</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
