"""The reports' chart: incidents by month, stacked by category, drawn as SVG by
`_report_chart.html` (with a text description and the table beside it)."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.web.render import month
from store.reports import CategoryMonths

# Okabe-Ito: told apart with every common kind of colour blindness; grey for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER_COLOUR = "#8C8C8C"


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    colour: str
    label: str  # for the segment's <title>


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    total: int  # incidents that month (each once)
    top: float  # y of the top of the stack
    segments: list[Segment]
    show_label: bool  # with many months, every other (or third...) month is labelled
    show_total: bool  # the number above the column, when there is room for it


@dataclass(frozen=True)
class Chart:
    """A stacked column chart of categories by month, drawn by `_report_chart.html` as SVG."""

    width: int
    height: int
    left: int
    base: float  # y of the axis
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    legend: list[tuple[str, str]]  # colour, name
    description: str


def _nice_step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if top / step <= 5:
            return step
    return 10_000


def build_chart(data: CategoryMonths, *, shown: int = len(PALETTE)) -> Chart:
    """Columns per month, stacked by category: the most frequent six, then the rest."""
    width, height, left, right, top_pad, bottom = 720, 300, 48, 12, 16, 40
    named = data.rows[:shown]
    rest = data.rows[shown:]
    series = [(r.name, r.counts, PALETTE[i]) for i, r in enumerate(named)]
    if rest:
        others = [sum(r.counts[m] for r in rest) for m in range(len(data.months))]
        series.append((f"Other categories ({len(rest)})", others, OTHER_COLOUR))
    stacks = [sum(s[1][m] for s in series) for m in range(len(data.months))]
    highest = max(stacks, default=0) or 1
    step = _nice_step(highest)
    axis_top = step * -(-highest // step)
    base = float(height - bottom)
    scale = (base - top_pad) / axis_top
    slot = (width - left - right) / max(1, len(data.months))
    bar_width = min(56.0, slot * 0.6)
    every = -(-len(data.months) // 12)  # label at most twelve months
    bars = []
    for m, first_day in enumerate(data.months):
        x = left + slot * m + (slot - bar_width) / 2
        y = base
        segments = []
        for name, counts, colour in series:
            count = counts[m]
            if not count:
                continue
            h = count * scale
            y -= h
            segments.append(Segment(round(y, 1), round(h, 1), colour, f"{name}: {count}"))
        bars.append(
            Bar(
                round(x, 1),
                round(bar_width, 1),
                month(first_day),
                data.incidents[m],
                round(y, 1),
                segments,
                show_label=m % every == 0,
                show_total=slot >= 30,
            )
        )
    ticks = [(round(base - v * scale, 1), v) for v in range(0, axis_top + 1, step)]
    description = (
        f"{data.total} incidents from {month(data.months[0])} to {month(data.months[-1])}. "
        + "; ".join(f"{month(mo)}: {n}" for mo, n in zip(data.months, data.incidents, strict=True))
        + ". An incident with two categories is counted in each."
        + " The table below gives every figure."
    )
    return Chart(
        width, height, left, base, bars, ticks, [(c, n) for n, _, c in series], description
    )
