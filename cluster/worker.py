"""The loop every Ray Train worker runs: one DDP rank of one run, through `harness.train`.

Ray has set up the process group before this starts; `train()` wraps the model in DDP itself.
Rank 0 mirrors the run to W&B and writes its files as `run_local` does (config.yaml,
model.pt, then result.json). Exceptions other than bad input propagate, so that a broken
worker makes Ray restart the run from its last checkpoint instead of recording a failure.
"""

from __future__ import annotations

from typing import Any

import ray.train
from torch import nn

from cluster.checkpoints import RayCheckpoints
from cluster.storage import Storage
from harness.config import RunConfig
from harness.errors import UserError
from harness.runner import write_run_files
from harness.tracking import start_tracking
from harness.train import EpochCallback, Worker, failed_record, train


def train_worker(loop_config: dict[str, Any]) -> None:
    """Entry point of `TorchTrainer(train_loop_per_worker=...)`; loop_config holds the run config
    (as JSON-ready data) and the storage path."""
    config = RunConfig.model_validate(loop_config["config"])
    context = ray.train.get_context()
    worker = Worker(context.get_world_rank(), context.get_local_rank(), context.get_world_size())
    if not worker.is_chief:
        run_training(config, worker, callbacks=[])
        return
    storage = Storage(loop_config["storage_path"], config.experiment)
    with storage.run_files(config.run_id()) as run_dir:
        tracker = start_tracking(config, run_dir, worker)
        record, model = run_training(config, worker, callbacks=[tracker.log_epoch] if tracker else [])
        write_run_files(run_dir, config, record, model)
        if tracker:
            tracker.finish(record)


def run_training(config: RunConfig, worker: Worker, callbacks: list[EpochCallback]) -> tuple[dict[str, Any], nn.Module | None]:
    """`harness.train` with Ray checkpoints; bad input (e.g. data missing on this node) becomes a
    failed record on every rank, since a restart would fail the same way."""
    try:
        return train(config, worker, RayCheckpoints(worker), callbacks=callbacks)
    except UserError as exc:
        return failed_record(config, str(exc)), None
