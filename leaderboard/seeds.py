"""Aggregate runs that differ only in their seed: one row with mean, standard deviation and n.

A single seed says little about a pruning method: variance across seeds is often as large as
the gap between methods. Rows therefore describe a configuration, and the spread is shown.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

METRICS = (
    "top1", "top5", "density", "compression_rate", "macs", "macs_dense", "flops", "prunable_params",
    "prunable_nonzero", "epochs", "epochs_to_sparsity", "wall_seconds",
)  # fmt: skip
# Config fields that say where or how fast a run ran, not what it computed: ignored, with the
# seed, when deciding whether two runs are repeats of one configuration.
_NOT_IDENTITY = {
    (): ("seed", "experiment", "output_dir", "wandb"),
    ("data",): ("root", "download", "num_workers", "eval_batch_size"),
}


def _strip(config: dict[str, Any]) -> dict[str, Any]:
    stripped = json.loads(json.dumps(config, default=str))
    for path, keys in _NOT_IDENTITY.items():
        node = stripped
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            for key in keys:
                node.pop(key, None)
    return stripped


def configuration_key(run: pd.Series) -> str:
    """What a run computed, apart from its seed: method, model, data set, input size,
    hyper-parameters, epoch budget, and the rest of its config when the record has one."""
    identity = {
        "method": run["method"],
        "model": run["model"],
        "dataset": run["dataset"],
        "input_size": run["input_size"],
        "granularity": run["granularity"],
        "hparams": run["hparams"],
        "phases": run["phases"] if isinstance(run["phases"], dict) else None,
        "epochs": None if pd.isna(run["epochs"]) else run["epochs"],
        "target_compression": None if pd.isna(run["target_compression"]) else run["target_compression"],
        "config": _strip(run["config"]) if isinstance(run["config"], dict) else None,
    }
    return json.dumps(identity, sort_keys=True, default=str)


def aggregate_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the (finished) `runs`: for every metric M the columns M
    (mean), M_std (sample standard deviation, empty for one run) and M_n (runs that report M);
    plus n, the run ids, seeds and trails of its runs."""
    if runs.empty:
        return pd.DataFrame()
    runs = runs.assign(configuration=runs.apply(configuration_key, axis=1))
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
            "trails": [{"run_id": r.run_id, "seed": r.seed, "trail": r.trail} for r in group.itertuples()],
        }
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce")
            row[metric] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1)
            row[f"{metric}_n"] = int(values.notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)
