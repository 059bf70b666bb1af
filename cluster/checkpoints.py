"""Per-epoch checkpoints through Ray Train, so that a restarted run continues where it stopped.

`harness.train` calls `save` on every worker after every epoch: every worker reports to Ray
(Ray needs equal report counts), and rank 0 attaches the state. After a worker dies, Ray
restarts the worker group and `ray.train.get_checkpoint()` hands back the latest state.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ray.train
import torch

from harness.train import Worker

STATE_FILE = "state.pt"


class RayCheckpoints:
    """`harness.train.CheckpointStore` backed by Ray Train's checkpoint storage."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def load(self) -> dict[str, Any] | None:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)

    def save(self, state: dict[str, Any], metrics: dict[str, Any]) -> None:
        if not self.worker.is_chief:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="prunebench-checkpoint-") as folder:
            torch.save(state, Path(folder) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
