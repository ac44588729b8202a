"""Charts for the analytics dashboard, drawn on the server as SVG: numbers in, markup out.

Server-side SVG works without JavaScript and under the strict CSP (no inline script or style: colours come
from classes styled in static/app.css; only presentation attributes such as width= and x= are used). Each
chart is an image to assistive technology (role="img", a <title> and an aria-label saying what it shows); the
page puts the same numbers in a table next to it. Pure and deterministic: the same figures give the same
markup, so it can be tested without a browser or a database.
"""

from __future__ import annotations

import math

import msgspec
from markupsafe import Markup, escape

WIDTH = 480  # the viewBox: text stays readable when a phone shrinks it and a desktop caps it
BAR_AREA_HEIGHT = 180
TOP = 28  # room for the value printed above the tallest bar
LEFT = 44  # room for the axis figures
BOTTOM = 44  # room for the bar's label and its mark under it
FUNNEL_ROW = 44


class Bar(msgspec.Struct, frozen=True):
    label: str  # under the bar, short ("1" for lesson 1)
    value: float
    mark: str = ""  # a second line under the label, e.g. the drop-off "−40%"
    alert: bool = False  # drawn in the warning colour (the mark says why)


class Step(msgspec.Struct, frozen=True):
    label: str
    count: int


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def nice_ceiling(value: float) -> float:
    """The axis top: the value rounded up to 1, 2, 2.5 or 5 times a power of ten (1 when there is nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _open(chart_id: str, title: str, description: str, height: int) -> str:
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return (f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" preserveAspectRatio="xMidYMid meet" aria-label="{escape(title)}" '
            f'aria-labelledby="{escape(title_id)} {escape(desc_id)}" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{escape(title_id)}">{escape(title)}</title>'
            f'<desc id="{escape(desc_id)}">{escape(description)}</desc>')


def bar_chart(chart_id: str, title: str, bars: list[Bar], *, unit: str = "", axis_label: str = "",
              scale_max: float | None = None) -> Markup:
    """Vertical bars, the value above each, the label (and a mark such as a drop-off) under it. The axis
    goes up to `scale_max` when given (100 for percentages), else to a round figure above the tallest bar."""
    height = TOP + BAR_AREA_HEIGHT + BOTTOM
    top = scale_max or nice_ceiling(max((bar.value for bar in bars), default=0))
    description = "; ".join(f"{b.label}: {_number(b.value)}{unit}{f' ({b.mark})' if b.mark else ''}" for b in bars)
    parts = [_open(chart_id, title, description or "No figures yet.", height)]
    base = TOP + BAR_AREA_HEIGHT
    for fraction in (0, 0.5, 1):  # three grid lines are enough to read the bars against
        y = base - fraction * BAR_AREA_HEIGHT
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="chart-axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(_number(top * fraction))}{escape(unit)}</text>')
    slot = (WIDTH - LEFT) / max(len(bars), 1)
    bar_width = min(slot * 0.7, 64)
    for index, bar in enumerate(bars):
        center = LEFT + slot * (index + 0.5)
        bar_height = max(bar.value, 0) / top * BAR_AREA_HEIGHT
        css = "chart-bar chart-bar-alert" if bar.alert else "chart-bar"
        parts.append(
            f'<rect class="{css}" x="{center - bar_width / 2:.1f}" y="{base - bar_height:.1f}" width="{bar_width:.1f}" '
            f'height="{bar_height:.1f}" rx="3"/>'
            f'<text class="chart-value" x="{center:.1f}" y="{base - bar_height - 6:.1f}" text-anchor="middle">'
            f'{escape(_number(bar.value))}{escape(unit)}</text>'
            f'<text class="chart-label" x="{center:.1f}" y="{base + 16}" text-anchor="middle">'
            f'{escape(bar.label)}</text>')
        if bar.mark:
            css = "chart-mark chart-mark-alert" if bar.alert else "chart-mark"
            parts.append(f'<text class="{css}" x="{center:.1f}" y="{base + 32}" text-anchor="middle">'
                         f'{escape(bar.mark)}</text>')
    if axis_label:
        parts.append(f'<text class="chart-axis" x="4" y="12">{escape(axis_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel_chart(chart_id: str, title: str, steps: list[Step]) -> Markup:
    """One horizontal bar per step, as wide as its share of the first step, with the count and that share."""
    height = FUNNEL_ROW * max(len(steps), 1) + 8
    first = steps[0].count if steps else 0
    widest = max((step.count for step in steps), default=0) or 1
    description = "; ".join(f"{s.label}: {s.count}{_share(s.count, first, steps[0].label)}" for s in steps)
    parts = [_open(chart_id, title, description or "No figures yet.", height)]
    label_width, figure_width = 130, 100
    room = WIDTH - label_width - figure_width
    for index, step in enumerate(steps):
        y = 4 + index * FUNNEL_ROW
        width = max(step.count / widest * room, 2 if step.count else 0)
        parts.append(
            f'<text class="chart-label" x="{label_width - 10}" y="{y + 24}" text-anchor="end">'
            f'{escape(step.label)}</text>'
            f'<rect class="chart-track" x="{label_width}" y="{y + 6}" width="{room}" height="28" rx="4"/>'
            f'<rect class="chart-bar chart-funnel-{index}" x="{label_width}" y="{y + 6}" width="{width:.1f}" '
            f'height="28" rx="4"/>'
            f'<text class="chart-value" x="{label_width + room + 10}" y="{y + 24}">'
            f'{step.count}{f" · {step.count / first:.0%}" if first else ""}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _share(count: int, first: int, first_label: str) -> str:
    return f" ({count / first:.0%} of {first_label.lower()})" if first else ""


# The dashboard's charts, from services.course_report / funnel_of rows.

def drop_off_chart(lessons: list[dict], threshold: float) -> Markup:
    """Learners per lesson, one row each; after each its drop-off from the lesson before, in the warning colour
    past the workspace's threshold. Rows, not columns: a twelve-lesson course's drop-offs crowded each other."""
    bars = []
    for lesson in lessons:
        drop = lesson.get("drop_off_rate")
        bars.append(Bar(label=f"Lesson {lesson['lesson_index']}", value=lesson["viewers"] or 0,
                        mark=f"−{drop:.0%}" if drop else "", alert=bool(drop and drop > threshold)))
    return row_chart("chart-drop-off", "Learners per lesson, with the drop-off from the lesson before", bars)


def pass_rate_chart(lessons: list[dict], threshold: float) -> Markup:
    """One row per quizzed lesson (horizontal bars: twelve or more lessons never crowd their labels), the rate
    and "passes of attempts" after the bar, in the warning colour below the workspace's threshold."""
    bars = [Bar(label=f"Lesson {lesson['lesson_index']}", value=round(lesson["pass_rate"] * 100),
                mark=f"{lesson['quiz_passes']} of {lesson['quiz_attempts']}", alert=lesson["pass_rate"] < threshold)
            for lesson in lessons if lesson.get("pass_rate") is not None]
    return row_chart("chart-pass-rate", "Quiz pass rate per lesson", bars, unit="%", scale_max=100)


ROW = 30  # one bar per row, its label before it and its figures after it
ROW_LABEL = 84  # "Lesson 12" at the label size
ROW_FIGURES = 150  # "100%" (bold) and "999 of 1000" after the bar, with a gap between them
ROW_MARK = 64  # where the mark starts, after the bar's end
ROW_AXIS = 22  # the scale's figures under the last row


def row_chart(chart_id: str, title: str, bars: list[Bar], *, unit: str = "", scale_max: float | None = None) -> Markup:
    """Horizontal bars, one row each: the label on the left, the value and its mark on the right. As many
    rows as bars, so labels keep their room however many there are."""
    height = ROW * max(len(bars), 1) + ROW_AXIS
    top = scale_max or nice_ceiling(max((bar.value for bar in bars), default=0))
    description = "; ".join(f"{b.label}: {_number(b.value)}{unit}{f' ({b.mark})' if b.mark else ''}" for b in bars)
    parts = [_open(chart_id, title, description or "No figures yet.", height)]
    room = WIDTH - ROW_LABEL - ROW_FIGURES
    rows_bottom = ROW * len(bars)
    for fraction in (0, 0.5, 1):
        x = ROW_LABEL + fraction * room
        parts.append(f'<line class="chart-grid" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{rows_bottom + 4}"/>'
                     f'<text class="chart-axis" x="{x:.1f}" y="{rows_bottom + 18}" text-anchor="middle">'
                     f'{escape(_number(top * fraction))}{escape(unit)}</text>')
    for index, bar in enumerate(bars):
        y = index * ROW
        width = max(bar.value, 0) / top * room
        css = "chart-bar chart-bar-alert" if bar.alert else "chart-bar"
        parts.append(
            f'<text class="chart-label" x="{ROW_LABEL - 8}" y="{y + 20}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect class="{css}" x="{ROW_LABEL}" y="{y + 6}" width="{width:.1f}" height="{ROW - 12}" rx="3"/>'
            f'<text class="chart-value" x="{ROW_LABEL + room + 8}" y="{y + 20}">'
            f'{escape(_number(bar.value))}{escape(unit)}</text>')
        if bar.mark:
            css = "chart-mark chart-mark-alert" if bar.alert else "chart-mark"
            parts.append(f'<text class="{css}" x="{ROW_LABEL + room + ROW_MARK}" y="{y + 20}">'
                         f'{escape(bar.mark)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel_charts(funnel: dict) -> tuple[Markup, Markup]:
    def steps(rows: list[dict]) -> list[Step]:
        return [Step(row["step"], row["learners"] or 0) for row in rows]

    return (funnel_chart("chart-view-funnel", "Funnel: viewed the course, enrolled, completed",
                         steps(funnel["view_funnel"])),
            funnel_chart("chart-purchase-funnel", "Funnel: bought, enrolled, completed",
                         steps(funnel["purchase_funnel"])))
