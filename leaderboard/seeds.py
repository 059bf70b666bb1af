"""Aggregate runs that differ only in their seed: one row with mean, standard deviation and n.

A single seed says little about a pruning method: variance across seeds is often as large as
the gap between methods. Rows therefore describe a configuration (the seedless identity of
core.identity, the same rule that names runs), and the spread is shown.

Measured speed is averaged only over seeds measured on the same device (SPEED): a row's speed
comes from the device most of its seeds were timed on, and says which.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from prunebench.core.record import METRICS
from prunebench.leaderboard.interval import half_width

SPEED = ("speedup", "speedup_b1", "latency_ms", "dense_latency_ms")  # leaderboard.store.speed_fields, per `speed_on`


# facts of a run the store adds to the record's metrics (store.normalize, cost.with_costs), averaged like them
PER_RUN = ("val_top1", "total_epochs", "device_seconds")
AVERAGED = (*METRICS, *PER_RUN)
INTERVALS = ("top1", "top5")  # the metrics a row shows with its 95 % t-interval (M_ci95)

# What a configuration's row takes from its first run (the same in all of its runs).
SHARED = ("method", "model", "dataset", "input_size", "granularity", "hparams", "target_compression", "phases", "config")


def aggregate_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the (finished) `runs`: for every metric M (AVERAGED) the columns M
    (mean), M_std (sample standard deviation, empty for one run) and M_n (runs that report M);
    for the INTERVALS also M_ci95 (half the 95 % t-interval, interval.half_width); plus n, the run ids, seeds and trails of its runs."""
    if runs.empty:
        return pd.DataFrame()
    first_seen = {key: index for index, key in enumerate(dict.fromkeys(runs["configuration"]))}
    seeds = pd.to_numeric(runs["seed"], errors="coerce").to_numpy()
    runs = runs.iloc[np.lexsort((seeds, runs["configuration"].map(first_seen).to_numpy()))]  # configurations as read, runs by seed
    numbers = runs[list(AVERAGED)].apply(pd.to_numeric, errors="coerce").groupby(runs["configuration"], sort=False)
    means, spreads, counts = (frame.to_dict("index") for frame in (numbers.mean(), numbers.std(ddof=1), numbers.count()))  # one pass each
    groups: dict[str, list[dict[str, Any]]] = {}
    columns = ["configuration", "run_id", "seed", "trail", "layers", "histograms", *SHARED, "speed_on", *SPEED]
    for run in runs[columns].to_dict("records"):  # plain dicts: a pandas group per configuration costs milliseconds
        groups.setdefault(run["configuration"], []).append(run)
    rows = []
    for key, group in groups.items():
        row: dict[str, Any] = {
            "configuration": key,
            **{field: group[0][field] for field in SHARED},
            "n": len(group),
            "run_ids": [run["run_id"] for run in group],
            "seeds": [run["seed"] for run in group],
            "trails": [{name: run[name] for name in ("run_id", "seed", "trail", "layers", "histograms")} for run in group],
        }
        for metric in AVERAGED:
            row[metric] = means[key][metric]
            row[f"{metric}_std"] = spreads[key][metric]
            row[f"{metric}_n"] = int(counts[key][metric])
        for metric in INTERVALS:
            row[f"{metric}_ci95"] = half_width(row[f"{metric}_std"], row[f"{metric}_n"])
        row.update(speed_of(group))
        rows.append(row)
    return pd.DataFrame(rows)


def speed_of(group: list[dict[str, Any]]) -> dict[str, Any]:
    """`speed_on` (the device most of the seeds were timed on; the first seed's on a tie) and the
    mean and count of each SPEED figure over the seeds timed there."""
    devices = Counter(run["speed_on"] for run in group if pd.notna(run["speed_on"]))  # counted in seed order
    if not devices:
        return {"speed_on": None, **{name: float("nan") for name in SPEED}, "speedup_n": 0}
    device = max(devices, key=devices.__getitem__)  # the first of a tie
    same = [run for run in group if run["speed_on"] == device]
    return {"speed_on": device, **{name: _mean([run[name] for run in same]) for name in SPEED}, "speedup_n": len(same)}


def _mean(values: list[Any]) -> float:
    """The mean of the numbers given, missing ones left out (NaN when none is left)."""
    numbers = [float(value) for value in values if pd.notna(value)]
    return float(np.mean(numbers)) if numbers else float("nan")
