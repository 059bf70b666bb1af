"""Which of a method's settings a track reports: the one with the best final validation top-1.

A method swept over several settings would look better than it is if the board kept the one
with the best test top-1 (the test split would have chosen it). The choice is made on the
validation split (the last trail entry's val top-1, averaged over the seeds), and the chosen
row is then reported by its test top-1 like every other row.
"""

from __future__ import annotations

import pandas as pd

from prunebench.leaderboard.tracks import DENSE


def chosen_settings(rows: pd.DataFrame) -> list[bool]:
    """For each measured row of one track: True for the setting of highest mean final validation
    top-1 of each method that has several settings here (the first of a tie in the rows' order);
    dense references, rows without a validation top-1 and a method's only setting are never marked."""
    candidates: dict[str, list[tuple[float, int]]] = {}
    for position, (method, granularity, val) in enumerate(zip(rows["method"], rows["granularity"], rows["val_top1"])):
        if granularity != DENSE and not pd.isna(val):
            candidates.setdefault(method, []).append((-float(val), position))
    picked = {min(settings)[1] for settings in candidates.values() if len(settings) > 1}
    return [position in picked for position in range(len(rows))]
