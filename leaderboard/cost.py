"""What a row cost to train: its total training epochs and its device-seconds.

A method that starts from a grid's shared dense stage did not train that stage itself, but it
could not exist without it: its cost counts the stage's epochs (and the stage's device-seconds,
when the stage's record is read), so that a method is never cheaper on the board than it was to
run. One definition, here, for every view and sort key.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def devices(environment: dict[str, Any]) -> int:
    """The devices a run held: one a DDP worker (a GPU, or the CPUs a CPU worker was given), so
    its world size; 1 where the record does not say."""
    return int(environment.get("world_size") or 1)


def device_seconds(wall_seconds: float | None, environment: dict[str, Any]) -> float:
    """devices x wall-clock seconds of the run (nan without a wall time)."""
    return math.nan if wall_seconds is None else devices(environment) * float(wall_seconds)


def dense_stage(config: dict[str, Any] | None) -> str | None:
    """The run id of the shared dense stage a run's config names (model.dense_stage), else None."""
    model = config.get("model") if isinstance(config, dict) else None
    stage = model.get("dense_stage") if isinstance(model, dict) else None
    return stage.get("run_id") if isinstance(stage, dict) else None


def with_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` (one row a run, with its own `device_seconds`) with `total_epochs` and
    `device_seconds` counting the shared dense stage: the run's own phases plus the stage's
    epochs and device-seconds from the stage's record when it was read, else the dense epochs
    the run's phases name (and no stage device-seconds)."""
    stages = [dense_stage(config) for config in runs["config"]]
    own = {run_id: (epochs, seconds) for run_id, epochs, seconds, stage in zip(runs["run_id"], runs["epochs"], runs["device_seconds"], stages)
           if stage is None}  # fmt: skip
    totals, seconds = [], []
    for row, stage in zip(runs[["epochs", "phases", "device_seconds"]].to_dict("records"), stages):
        if stage is None:
            totals.append(row["epochs"])
            seconds.append(row["device_seconds"])
            continue
        phases = row["phases"] if isinstance(row["phases"], dict) else {}
        stage_dense = phases.get("dense", 0)  # the stage's dense epochs, as the run's phases carry them
        trained = row["epochs"] - stage_dense
        stage_epochs, stage_seconds = own.get(stage, (stage_dense, 0.0))
        totals.append(trained + stage_epochs)
        seconds.append(row["device_seconds"] + stage_seconds)
    return runs.assign(total_epochs=totals, device_seconds=seconds)
