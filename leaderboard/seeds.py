"""Aggregate runs that differ only in their seed: one row with mean, standard deviation and n.

A single seed says little about a pruning method: variance across seeds is often as large as
the gap between methods. Rows therefore describe a configuration (the seedless identity of
core.identity, the same rule that names runs), and the spread is shown.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.record import METRICS


def aggregate_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the (finished) `runs`: for every metric M the columns M
    (mean), M_std (sample standard deviation, empty for one run) and M_n (runs that report M);
    plus n, the run ids, seeds and trails of its runs."""
    if runs.empty:
        return pd.DataFrame()
    rows = []
    for key, group in runs.groupby("configuration", sort=False):
        group = group.sort_values("seed", key=lambda s: pd.to_numeric(s, errors="coerce"))
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
            values = pd.to_numeric(group[metric], errors="coerce")
            row[metric] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1)
            row[f"{metric}_n"] = int(values.notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)
