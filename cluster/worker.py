"""The loop every Ray Train worker runs: one DDP rank of one run, through the run lifecycle.

Ray has set up the process group before this starts; the trainer wraps the model in DDP. The
lifecycle is the one `prunebench run` uses; the cluster supplies only the worker's place in
the run. Bad input found on a worker (data missing on this node) is recorded as a failed run,
since a restart would fail the same way.
"""

from __future__ import annotations

from typing import Any

import ray.train

from prunebench.cluster.live import publisher
from prunebench.core.device import Worker
from prunebench.core.errors import UserError
from prunebench.harness.config import RunConfig
from prunebench.harness.lifecycle import execute_run, record_failure


def train_worker(loop_config: dict[str, Any]) -> None:
    """Entry point of `TorchTrainer(train_loop_per_worker=...)`; loop_config holds the run
    config as JSON-ready data."""
    config = RunConfig.model_validate(loop_config["config"])
    context = ray.train.get_context()
    worker = Worker(context.get_world_rank(), context.get_local_rank(), context.get_world_size())
    try:
        execute_run(config, worker, resume=True, callbacks=publisher(config) if worker.is_chief else [])
    except UserError as exc:
        if worker.is_chief:
            record_failure(config.run_files(), config, str(exc))
