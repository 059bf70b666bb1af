"""One rank of one run under Ray, through the run lifecycle `prunebench run` uses.

Two callers, one lifecycle: a one-worker run's Tune trial calls `run_rank` itself (rank 0 of
1), and each Ray Train worker of a multi-worker run calls it through `train_worker`, with its
rank from Ray Train's context (Ray has set up the process group; the trainer wraps the model
in DDP). Rank 0 publishes its epoch lines to the driver's live view. Bad input found on a
worker (data missing on this node) is recorded as a failed run, since a restart would fail
the same way.
"""

from __future__ import annotations

from typing import Any

from prunebench.cluster.live import publisher
from prunebench.core.device import Worker
from prunebench.core.errors import UserError
from prunebench.harness.config import RunConfig
from prunebench.harness.lifecycle import execute_run, record_failure


def run_rank(config: RunConfig, worker: Worker) -> None:
    """Train this worker's rank of `config`, resuming from the run's checkpoint if it has one."""
    try:
        execute_run(config, worker, resume=True, callbacks=publisher(config) if worker.is_chief else [])
    except UserError as exc:
        if worker.is_chief:
            record_failure(config.run_files(), config, str(exc))


def train_worker(loop_config: dict[str, Any]) -> None:
    """Entry point of `TorchTrainer(train_loop_per_worker=...)`; loop_config holds the run
    config as JSON-ready data."""
    import ray.train

    context = ray.train.get_context()
    worker = Worker(context.get_world_rank(), context.get_local_rank(), context.get_world_size())
    run_rank(RunConfig.model_validate(loop_config["config"]), worker)
