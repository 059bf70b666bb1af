"""Small inline SVG charts drawn in Python: a scatter with a Pareto line and error bars, a line
chart and a histogram.

The HTML page must open with no network, so no plotting library is loaded from a CDN; these
three chart kinds are all the page needs. Every label passes through html.escape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    color: str
    tip: str  # tooltip text, unescaped
    reported: bool = False  # papers' rows: hollow diamonds
    front: bool = False  # on the Pareto front: joined by the front line
    error: float = math.nan  # half the y interval: drawn as an error bar (nan: none)


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    xs: list[float]
    ys: list[float]


@dataclass(frozen=True)
class Canvas:
    """Chart size and the plot area inside its margins (pixels)."""

    width: int
    height: int
    left: int = 54
    right: int = 14
    top: int = 26
    bottom: int = 44

    @property
    def x_end(self) -> int:
        return self.width - self.right

    @property
    def y_end(self) -> int:
        return self.height - self.bottom


SCATTER, TRAIL = Canvas(440, 300), Canvas(320, 190)
HISTOGRAM = TRAIL


AXIS_LIMIT = 1e300  # the widest axis drawn: its span, padded, stays finite


class Axis:
    """Maps data to pixels, linear or log10, with readable tick values."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool) -> None:
        self.log = log
        if log:
            low, high = math.log10(low), math.log10(high)
        low, high = max(low, -AXIS_LIMIT), min(high, AXIS_LIMIT)  # finite edges of 1e308 would span infinity
        if high - low < 1e-12:
            low, high = low - 0.5, high + 0.5
        pad = (high - low) * 0.06
        self.low, self.high, self.start, self.end = low - pad, high + pad, start, end
        raw = (self.high - self.low) / 5
        step = 10 ** math.floor(math.log10(raw))
        self.step = step * next(m for m in (1, 2, 5, 10) if step * m >= raw)  # linear tick spacing

    def __call__(self, value: float) -> float:
        v = min(max(math.log10(value) if self.log else value, -AXIS_LIMIT), AXIS_LIMIT)
        return self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            decades = range(math.floor(self.low), math.ceil(self.high) + 1)
            for mantissas in ((1, 2, 5), range(1, 10)):  # finer steps on a short axis
                inside = [m * 10**d for d in decades for m in mantissas if self.low <= math.log10(m * 10**d) <= self.high]
                if len(inside) >= 3:
                    return inside
            return inside if len(inside) >= 2 else [10**self.low, 10**self.high]
        first = math.ceil(self.low / self.step) * self.step
        return [first + i * self.step for i in range(int((self.high - first) / self.step) + 1)]

    def tick_text(self, value: float) -> str:
        """Enough decimals to tell neighbouring ticks apart; K/M/G for large values."""
        if self.log or abs(value) >= 1e3:
            return tick_label(value)
        return f"{value:.{max(0, -math.floor(math.log10(self.step)))}f}"


def tick_label(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _svg(canvas: Canvas, parts: list[str], css_class: str) -> str:
    size = f'viewBox="0 0 {canvas.width} {canvas.height}" width="{canvas.width}" height="{canvas.height}"'
    return f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" {size} role="img">{"".join(parts)}</svg>'


def _empty(canvas: Canvas, message: str, css_class: str) -> str:
    text = f'<text class="empty" x="{canvas.width / 2}" y="{canvas.height / 2}" text-anchor="middle">{escape(message)}</text>'
    return _svg(canvas, [text], css_class)


TITLE_CHAR_PX = 6.8  # the width of a character of the 12 px title, about


def _title(c: Canvas, title: str) -> str:
    """The chart's title from its left edge; a title longer than the chart is squeezed to fit
    (a device name can be long) and is whole in its tooltip."""
    room = c.width - 16
    fit = f' textLength="{room}" lengthAdjust="spacingAndGlyphs"' if len(title) * TITLE_CHAR_PX > room else ""
    return f'<text class="title" x="8" y="16"{fit}>{escape(title)}<title>{escape(title)}</title></text>'


def _frame(canvas: Canvas, title: str, x: Axis, y: Axis, x_label: str, y_label: str) -> list[str]:
    """Title, plot area, grid, ticks and axis labels."""
    c = canvas
    parts = [
        _title(c, title),
        f'<rect class="plot" x="{c.left}" y="{c.top}" width="{c.x_end - c.left}" height="{c.y_end - c.top}"/>',
    ]
    for t in x.ticks():
        px = x(t)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{c.top}" x2="{px:.1f}" y2="{c.y_end}"/>')
        parts.append(f'<text class="tick" x="{px:.1f}" y="{c.y_end + 14}" text-anchor="middle">{escape(x.tick_text(t))}</text>')
    for t in y.ticks():
        py = y(t)
        parts.append(f'<line class="grid" x1="{c.left}" y1="{py:.1f}" x2="{c.x_end}" y2="{py:.1f}"/>')
        parts.append(f'<text class="tick" x="{c.left - 5}" y="{py + 3:.1f}" text-anchor="end">{escape(y.tick_text(t))}</text>')
    parts.append(f'<text class="label" x="{(c.left + c.x_end) / 2:.1f}" y="{c.height - 8}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text class="label" transform="translate(13 {(c.top + c.y_end) / 2:.1f}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    return parts


def _polyline(coordinates: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(coordinates))


def _bar(error: float) -> float:
    """An error bar's half-length: 0 where there is none."""
    return error if math.isfinite(error) and error > 0 else 0.0


def _error_bar(px: float, low: float, high: float, color: str) -> str:
    return f'<line class="error-bar" x1="{px:.1f}" y1="{low:.1f}" x2="{px:.1f}" y2="{high:.1f}" stroke="{color}"/>'


def scatter(points: list[Point], title: str, x_label: str, y_label: str, x_log: bool = True) -> str:
    """Points (only those with x > 0 on a log axis) with the front's points joined left to right."""
    c = SCATTER
    points = [p for p in points if math.isfinite(p.x) and math.isfinite(p.y) and (p.x > 0 or not x_log)]
    if not points:
        return _empty(c, f"no data for {title}", "chart")
    x = Axis(min(p.x for p in points), max(p.x for p in points), c.left, c.x_end, x_log)
    y = Axis(min(p.y - _bar(p.error) for p in points), max(p.y + _bar(p.error) for p in points), c.y_end, c.top, False)
    parts = _frame(c, title, x, y, x_label, y_label)
    parts += [_error_bar(x(p.x), y(p.y - p.error), y(p.y + p.error), p.color) for p in points if _bar(p.error)]
    front = sorted((p for p in points if p.front), key=lambda p: p.x)
    if len(front) > 1:
        parts.append(f'<path class="front" d="{_polyline([(x(p.x), y(p.y)) for p in front])}"/>')
    for p in sorted(points, key=lambda p: not p.reported):  # measured points drawn on top
        px, py, tip = x(p.x), y(p.y), f"<title>{escape(p.tip)}</title>"
        if p.reported:
            diamond = _polyline([(px, py - 5), (px + 5, py), (px, py + 5), (px - 5, py)]) + " Z"
            parts.append(f'<path class="reported" d="{diamond}" stroke="{p.color}">{tip}</path>')
        else:
            css, radius = ("point front-point", 5.5) if p.front else ("point", 4.5)
            parts.append(f'<circle class="{css}" cx="{px:.1f}" cy="{py:.1f}" r="{radius}" fill="{p.color}">{tip}</circle>')
    return _svg(c, parts, "chart")


def line_chart(series: list[Series], title: str, x_label: str, y_label: str, marks: Sequence[tuple[float, str]] = ()) -> str:
    """Lines over a shared x with y in [0, 1]; `marks` are labelled vertical lines (phase starts)."""
    c = TRAIL
    xs = [v for s in series for v in s.xs]
    if not xs:
        return _empty(c, "no trail recorded", "trail")
    x = Axis(min(xs), max(xs), c.left, c.x_end, False)
    y = Axis(0.0, 1.0, c.y_end, c.top, False)
    parts = _frame(c, title, x, y, x_label, y_label)
    for position, label in marks:
        px = x(position)
        parts.append(f'<line class="phase" x1="{px:.1f}" y1="{c.top}" x2="{px:.1f}" y2="{c.y_end}"/>')
        parts.append(f'<text class="phase-label" x="{px + 3:.1f}" y="{c.top + 10}">{escape(label)}</text>')
    for i, s in enumerate(series):
        pts = [(x(a), y(b)) for a, b in zip(s.xs, s.ys) if b is not None and math.isfinite(b)]
        if pts:
            parts.append(f'<path class="series" d="{_polyline(pts)}" stroke="{s.color}"><title>{escape(s.name)}</title></path>')
            parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2" fill="{s.color}"/>' for px, py in pts]
        parts.append(f'<text class="key" x="{c.x_end - 70 * i}" y="16" text-anchor="end" style="fill: {s.color}">■ {escape(s.name)}</text>')
    return _svg(c, parts, "trail")


def histogram(edges: Sequence[float], counts: Sequence[int], title: str, x_label: str, threshold: float | None = None) -> str:
    """One bar per bin (its count in `data-count` and the tooltip); `threshold` as a labelled line."""
    c = HISTOGRAM
    if not counts or not all(math.isfinite(e) for e in edges):
        return _empty(c, "no histogram recorded", "histogram")
    x = Axis(edges[0], edges[-1], c.left, c.x_end, False)
    y = Axis(0.0, float(max(max(counts), 1)), c.y_end, c.top, False)
    parts = _frame(c, title, x, y, x_label, "count")
    for low, high, n in zip(edges, edges[1:], counts):
        left, top = x(low), y(n)
        tip = escape(f"{tick_label(low)} to {tick_label(high)}: {n}")
        parts.append(
            f'<rect class="bar" data-count="{n}" x="{left:.1f}" y="{top:.1f}" width="{max(x(high) - left - 1, 1):.1f}" '
            f'height="{y(0.0) - top:.1f}"><title>{tip}</title></rect>'
        )
    if threshold is not None and math.isfinite(threshold) and edges[0] <= threshold <= edges[-1]:
        px = x(threshold)
        parts.append(f'<line class="phase" x1="{px:.1f}" y1="{c.top}" x2="{px:.1f}" y2="{c.y_end}"/>')
        parts.append(f'<text class="phase-label" x="{px + 3:.1f}" y="{c.top + 10}">threshold {escape(tick_label(threshold))}</text>')
    return _svg(c, parts, "histogram")


@dataclass(frozen=True)
class SweepSeries:
    """One method's settings, joined left to right, each with an error bar (± half-width)."""

    name: str
    color: str
    points: list[tuple[float, float, float, str]]  # x, y, half-width (nan: none), tooltip


def sweep_chart(series: list[SweepSeries], title: str, x_label: str, y_label: str) -> str:
    """Lines over a log x axis with vertical error bars: each method's sweep and its intervals."""
    c = SCATTER
    drawn = [(s, [p for p in s.points if p[0] > 0 and math.isfinite(p[0]) and math.isfinite(p[1])]) for s in series]
    values = [(x, y, _bar(e)) for _, points in drawn for x, y, e, _ in points]
    if not values:
        return _empty(c, f"no data for {title}", "sweep")
    x = Axis(min(v[0] for v in values), max(v[0] for v in values), c.left, c.x_end, True)
    y = Axis(min(v[1] - v[2] for v in values), max(v[1] + v[2] for v in values), c.y_end, c.top, False)
    parts = _frame(c, title, x, y, x_label, y_label)
    for i, (s, points) in enumerate(drawn):
        points = sorted(points)
        if len(points) > 1:
            parts.append(f'<path class="series" d="{_polyline([(x(p[0]), y(p[1])) for p in points])}" stroke="{s.color}"/>')
        for px, py, error, tip in points:
            if _bar(error):
                parts.append(_error_bar(x(px), y(py - error), y(py + error), s.color))
            parts.append(f'<circle class="point" cx="{x(px):.1f}" cy="{y(py):.1f}" r="3.5" fill="{s.color}"><title>{escape(tip)}</title></circle>')
        parts.append(f'<text class="key" x="{c.x_end - 70 * i}" y="16" text-anchor="end" style="fill: {s.color}">■ {escape(s.name)}</text>')
    return _svg(c, parts, "sweep")
