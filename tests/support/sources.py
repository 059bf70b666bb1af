"""Finished runs for the baselines to name (`match:`, `model.from_architecture`): records whose
`layers` come from a real model and the pruned model made of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from prunebench.core.metrics import compare_layers, layer_facts
from support.records import failed_record, make_record, write_runs


def write_source(root: Path, experiment: str, dense: nn.Module, pruned: nn.Module, input_shape: tuple[int, ...],
                 method: str = "ns", status: str = "finished", **overrides: Any) -> str:  # fmt: skip
    """A run of `method` under ROOT/EXPERIMENT whose layers are `pruned`'s beside `dense`'s; its run id."""
    layers = compare_layers(layer_facts(dense, input_shape), layer_facts(pruned, input_shape))
    fields = {"experiment": experiment, "dataset": "digits", "layers": layers, **overrides}
    record = make_record(method, **fields) if status == "finished" else failed_record(method, **fields)
    write_runs(root, [record])
    return record["run_id"]
