"""Ranking within a track: the Pareto front of (top-1, compression rate) first, or one column.

No single number orders pruning results: a method that keeps 0.5 points more accuracy at half
the compression is not worse. The rows that no other row beats on both accuracy and
compression (the Pareto front) are the honest answer, so they lead by default; a row is beaten
on accuracy only by more than the seeds' intervals (interval), never by noise.

Measured speed is only comparable on one device (and thread count and batch): `--sort speedup`
never ranks rows timed on different devices against each other. It groups the rows by where
they were timed (`speed_on`) and numbers each group from 1; rows without a measurement get no rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from prunebench.core.errors import UserError
from prunebench.leaderboard.options import SORT_KEYS


def check_sort(sort: str | None) -> None:
    if sort is not None and sort not in SORT_KEYS:
        raise UserError(f"--sort {sort!r}: unknown sort key; expected one of {' | '.join(SORT_KEYS)}")


def pareto_front(top1: Sequence[float], compression: Sequence[float], interval: Sequence[float] | None = None) -> list[bool]:
    """True for each point no other point dominates: one at least as compressed whose top-1 is
    higher by more than the two top-1 intervals together, or one more compressed whose top-1 is
    no lower than that (half-widths of the 95 % t-intervals, `interval`; a missing one counts as
    0, which leaves the plain Pareto rule): rows whose intervals overlap are not told apart.
    Points missing top-1 or compression are never on the front and dominate nothing."""
    halves = [0.0 if interval is None or pd.isna(interval[i]) else float(interval[i]) for i in range(len(top1))]
    points = list(zip(top1, compression, halves))
    valid = [not (pd.isna(a) or pd.isna(c)) for a, c, _ in points]
    front = []
    for i, (a, c, e) in enumerate(points):
        dominated = any(valid[j] and ((d >= c and b - a > e + f) or (d > c and b - a >= e + f))
                        for j, (b, d, f) in enumerate(points) if j != i)  # fmt: skip
        front.append(valid[i] and not dominated)
    return front


def rank(rows: pd.DataFrame, sort: str | None = None) -> pd.DataFrame:
    """`rows` (measured rows of one track) ordered and numbered: by `sort` (a SORT_KEYS name),
    or by default the Pareto front first, then the rest, each by top-1. Adds `pareto` and `rank`;
    rows missing the sort value go last."""
    check_sort(sort)
    intervals = list(rows["top1_ci95"]) if "top1_ci95" in rows else None  # seed-aggregated rows carry their interval
    rows = rows.assign(pareto=pareto_front(list(rows["top1"]), list(rows["compression_rate"]), intervals))
    if sort == "speedup":
        return rank_by_speed(rows)
    if sort is None:
        by, ascending = ["pareto", "top1", "compression_rate"], [False, False, False]
    else:
        column, up = SORT_KEYS[sort]
        by, ascending = [column, "top1"], [up, False]
    rows = rows.sort_values(by, ascending=ascending, na_position="last", kind="mergesort")
    return rows.assign(rank=range(1, len(rows) + 1))


def rank_by_speed(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by the device they were timed on (groups by name), each group by measured
    speedup (then top-1) and numbered from 1 on its own; unmeasured rows last, unranked."""
    timed = rows["speed_on"].notna() & rows["speedup"].notna()
    rows = rows.assign(_timed=timed).sort_values(["_timed", "speed_on", "speedup", "top1"], ascending=[False, True, False, False],
                                                 na_position="last", kind="mergesort")  # fmt: skip
    ranks = rows.groupby("speed_on", sort=False).cumcount() + 1
    return rows.assign(rank=ranks.where(rows["_timed"])).drop(columns="_timed")
