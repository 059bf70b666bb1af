"""A method's accuracy at an operating point it may not have hit exactly: read off its sweep.

A method's settings land wherever they land (3.7x, 9.2x), so comparing methods, or a run with a
paper's row, needs each one's value at the same compression. Within 5 % of a measured setting
that setting counts; otherwise the value is interpolated linearly over log-compression between
the nearest settings below and above, and only there: outside its sweep a method has no value
(no extrapolation). One function decides this for the verdicts, `vs paper`, the matched-point
table and the baselines' margins, so that they never disagree about what "at 8x" means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prunebench.leaderboard.interval import standard_error, t_half_width

RATIOS = (2.0, 4.0, 8.0, 16.0, 32.0)  # ShrinkBench's standard compression ratios
WITHIN = 0.05  # a setting within 5 % of an operating point is at it


@dataclass(frozen=True)
class SweepPoint:
    """One setting of a method: where it landed and what it measured (a mean over n seeds)."""

    x: float  # compression rate, or MACs reduction on a structured track
    y: float  # the measured quantity: top-1, or its change against dense
    se: float = math.nan  # standard error of y (nan for one seed)
    n: int = 1
    run_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AtPoint:
    """A method's value at an operating point, with what it was read from."""

    x: float
    y: float
    se: float
    n: int  # the fewest seeds of the settings it came from (the interval's degrees of freedom)
    run_ids: tuple[str, ...]
    interpolated: bool

    @property
    def half_width(self) -> float:
        """Half the 95 % t-interval of y (nan with fewer than two seeds)."""
        return t_half_width(self.se, self.n)


def at_operating_point(points: Sequence[SweepPoint], x: float, within: float = WITHIN) -> AtPoint | None:
    """The sweep's value at `x`: the nearest setting within `within` (relative) of it, else the
    log-linear interpolation between the nearest settings below and above; None outside the sweep."""
    usable = sorted((p for p in points if p.x > 0 and math.isfinite(p.x) and math.isfinite(p.y)), key=lambda p: p.x)
    if not usable or not (x > 0 and math.isfinite(x)):
        return None
    nearest = min(usable, key=lambda p: abs(math.log(p.x / x)))
    if abs(nearest.x / x - 1) <= within:
        return AtPoint(x=nearest.x, y=nearest.y, se=nearest.se, n=nearest.n, run_ids=nearest.run_ids, interpolated=False)
    below = [p for p in usable if p.x < x]
    above = [p for p in usable if p.x > x]
    if not below or not above:
        return None
    low, high = below[-1], above[0]
    w = math.log(x / low.x) / math.log(high.x / low.x)
    se = math.sqrt(((1 - w) * low.se) ** 2 + (w * high.se) ** 2)  # seeds of different settings are independent
    return AtPoint(x=x, y=(1 - w) * low.y + w * high.y, se=se, n=min(low.n, high.n), run_ids=low.run_ids + high.run_ids, interpolated=True)


def sweep_of(rows: list[dict], column: str, metric: str = "top1") -> list[SweepPoint]:
    """A method's settings (seed-aggregated rows) as sweep points of `metric` over `column`."""
    return [SweepPoint(x=row[column], y=row[metric], se=standard_error(row[f"{metric}_std"], row[f"{metric}_n"]),
                       n=int(row[f"{metric}_n"]), run_ids=tuple(row["run_ids"])) for row in rows]  # fmt: skip


def axis_of(structured: bool) -> str:
    """The column operating points are read on: MACs reduction on a structured track (its
    compression is physical), compression rate on an unstructured one."""
    return "macs_reduction" if structured else "compression_rate"


def matched_points(rows: list[dict], structured: bool, ratios: Sequence[float] = RATIOS) -> list[dict]:
    """Each pruning method's top-1 at each ratio its sweep reaches (compression, or MACs reduction
    on a structured track): one entry per method and ratio, with the 95 % t-interval and n."""
    column = axis_of(structured)
    methods: dict[str, list[dict]] = {}
    for row in rows:
        if row["granularity"] != "none":
            methods.setdefault(row["method"], []).append(row)
    table = []
    for method, settings in methods.items():
        sweep = sweep_of(settings, column)
        for ratio in ratios:
            at = at_operating_point(sweep, ratio)
            if at is not None:
                table.append({"method": method, "ratio": ratio, "axis": column, "top1": at.y, "ci95": at.half_width, "n": at.n,
                              "interpolated": at.interpolated, "run_ids": list(at.run_ids)})  # fmt: skip
    return table
