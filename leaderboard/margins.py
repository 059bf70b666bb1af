"""A method's margin over the baselines that say whether it learned anything (Blalock et al.;
Liu et al.): random pruning at the same operating point, and, for a structured row, its own
pruned architecture trained from scratch.

"3 points over random at 8x" is read off the random baseline's sweep by matched.at_operating_point,
the rule every other comparison at an operating point uses. A track without the baseline has no
margin (nan, shown blank), never 0.
"""

from __future__ import annotations

import math
from typing import Any

from prunebench.leaderboard.matched import at_operating_point, axis_of, sweep_of
from prunebench.leaderboard.tracks import DENSE

RANDOM = {"unstructured": "random", "structured": "random_channels"}  # the random baseline of each granularity


def from_architecture(row: dict[str, Any]) -> str | None:
    """The structured run whose architecture this row trained from scratch (model.from_architecture), else None."""
    model = row["config"].get("model") if isinstance(row.get("config"), dict) else None
    source = model.get("from_architecture") if isinstance(model, dict) else None
    return source if isinstance(source, str) else None


def margins(rows: list[dict[str, Any]], granularity: str) -> list[dict[str, float]]:
    """For each row (seed-aggregated, one track): `vs_random`, its top-1 minus the random
    baseline's at its operating point (nan without a baseline there), and `vs_scratch`, its top-1
    minus the mean top-1 of the from-scratch runs of its own architecture (nan without one). The
    baselines and the dense references get neither."""
    column = axis_of(granularity == "structured")
    random = RANDOM.get(granularity)
    sweep = sweep_of([row for row in rows if row["method"] == random and row["granularity"] == granularity], column)
    scratch: dict[str, list[float]] = {}
    for row in rows:
        source = from_architecture(row)
        if source is not None:
            scratch.setdefault(source, []).append(row["top1"])
    found = []
    for row in rows:
        if row["granularity"] == DENSE or row["method"] == random or from_architecture(row) is not None:
            found.append({"vs_random": math.nan, "vs_scratch": math.nan})
            continue
        at = at_operating_point(sweep, row[column])
        own = [top1 for run_id in row["run_ids"] for top1 in scratch.get(run_id, [])]
        found.append({"vs_random": math.nan if at is None else row["top1"] - at.y,
                      "vs_scratch": row["top1"] - sum(own) / len(own) if own else math.nan})  # fmt: skip
    return found
