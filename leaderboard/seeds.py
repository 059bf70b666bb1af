"""Aggregate runs that differ only in their seed: one row with mean, standard deviation and n.

A single seed says little about a pruning method: variance across seeds is often as large as
the gap between methods. Rows therefore describe a configuration (the seedless identity of
core.identity, the same rule that names runs), and the spread is shown.

Measured speed is averaged only over seeds measured on the same device (SPEED): a row's speed
comes from the device most of its seeds were timed on, and says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.record import METRICS

SPEED = ("speedup", "speedup_b1", "latency_ms", "dense_latency_ms")  # leaderboard.store.speed_fields, per `speed_on`


def aggregate_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the (finished) `runs`: for every metric M the columns M
    (mean), M_std (sample standard deviation, empty for one run) and M_n (runs that report M);
    plus n, the run ids, seeds and trails of its runs."""
    if runs.empty:
        return pd.DataFrame()
    first_seen = {key: index for index, key in enumerate(dict.fromkeys(runs["configuration"]))}
    seeds = pd.to_numeric(runs["seed"], errors="coerce").to_numpy()
    runs = runs.iloc[np.lexsort((seeds, runs["configuration"].map(first_seen).to_numpy()))]  # configurations as read, runs by seed
    by_configuration = runs.groupby("configuration", sort=False)
    numbers = runs[list(METRICS)].apply(pd.to_numeric, errors="coerce").groupby(runs["configuration"], sort=False)
    means, spreads, counts = (frame.to_dict("index") for frame in (numbers.mean(), numbers.std(ddof=1), numbers.count()))  # one pass each
    rows = []
    for key, group in by_configuration:
        first = group.iloc[0]
        row: dict[str, Any] = {
            "configuration": key,
            **{field: first[field] for field in ("method", "model", "dataset", "input_size", "granularity", "hparams", "target_compression", "phases")},
            "n": len(group),
            "run_ids": list(group["run_id"]),
            "seeds": list(group["seed"]),
            "trails": [{"run_id": r.run_id, "seed": r.seed, "trail": r.trail, "layers": r.layers, "histograms": r.histograms}
                       for r in group.itertuples()],
        }
        for metric in METRICS:
            row[metric] = means[key][metric]
            row[f"{metric}_std"] = spreads[key][metric]
            row[f"{metric}_n"] = int(counts[key][metric])
        row.update(speed_of(group))
        rows.append(row)
    return pd.DataFrame(rows)


def speed_of(group: pd.DataFrame) -> dict[str, Any]:
    """`speed_on` (the device most of the seeds were timed on; the first seed's on a tie) and the
    mean and count of each SPEED figure over the seeds timed there."""
    devices = group["speed_on"].dropna()
    if devices.empty:
        return {"speed_on": None, **{name: float("nan") for name in SPEED}, "speedup_n": 0}
    device = devices.value_counts(sort=False).idxmax()  # counted in seed order: the first of a tie
    same = group[group["speed_on"] == device]
    return {"speed_on": device, **{name: pd.to_numeric(same[name], errors="coerce").mean() for name in SPEED}, "speedup_n": len(same)}
