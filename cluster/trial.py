"""One run as a Ray Train job (`TorchTrainer`, DDP) inside a Ray Tune trial (Train V2 API).

The trial function only waits for its trainer; the workers hold the real resources. Trials,
and with them the runs' Train controllers (Ray places a controller beside its trial), live on
the head node, so a lost worker node takes only the workers it held: a controller lost with its
node would leave its run's placement group reserving CPUs or GPUs on the remaining nodes for as
long as the driver lives, which a restarted run can wait on forever. The run's
checkpoints live in its run directory (harness.checkpoints), so a worker group that Ray
restarts after a failure (up to `cluster.max_failures` times) resumes from the last epoch.
A run that still cannot finish gets a failed record, so that every run of the grid ends with
exactly one result.json.
"""

from __future__ import annotations

import tempfile
from typing import Any

import ray.train
from ray import tune
from ray.train.torch import TorchConfig, TorchTrainer

from prunebench.cluster.grid import MAX_CONCURRENT_RUNS, ClusterSpec
from prunebench.cluster.worker import train_worker
from prunebench.core.errors import error_line
from prunebench.harness.config import RunConfig
from prunebench.harness.lifecycle import record_failure

HEAD_NODE_RESOURCE = "node:__internal_head__"  # Ray gives every head node 1 of it (its own Train state actor asks for it too)
# no CPU (a head started with --num-cpus 0 takes trials too), and a share of the head resource
# small enough for the most runs a grid may run at a time
TRIAL_RESOURCES = {"CPU": 0, HEAD_NODE_RESOURCE: 1 / MAX_CONCURRENT_RUNS}


def job_payload(config: RunConfig, cluster: ClusterSpec) -> dict[str, Any]:
    """What a trial needs to run one config, as plain data."""
    return {"config": config.model_dump(mode="json"), "cluster": cluster.model_dump()}


def build_trainer(config: RunConfig, cluster: ClusterSpec, ray_storage: str) -> TorchTrainer:
    """DDP over `workers_per_run` workers: NCCL when the run asks for GPUs, gloo on CPUs."""
    use_gpu = cluster.gpus_per_worker > 0
    resources = {"CPU": cluster.cpus_per_worker, **({"GPU": cluster.gpus_per_worker} if use_gpu else {})}
    return TorchTrainer(
        train_worker,
        train_loop_config={"config": config.model_dump(mode="json")},
        scaling_config=ray.train.ScalingConfig(num_workers=cluster.workers_per_run, use_gpu=use_gpu, resources_per_worker=resources),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=ray.train.RunConfig(
            name=config.run_id(),
            storage_path=ray_storage,  # Ray Train's own bookkeeping; our checkpoints are in the run directory
            failure_config=ray.train.FailureConfig(max_failures=cluster.max_failures),
        ),
    )


def failure_reason(exc: Exception) -> str:
    """One line: the first worker's (or Ray Train controller's) error, else the trial's own."""
    if not isinstance(exc, ray.train.TrainingFailedError):
        return error_line(exc)
    causes = list(getattr(exc, "worker_failures", {}).values()) or [getattr(exc, "controller_failure", exc)]
    return f"Ray Train gave up on the run: {error_line(causes[0])}"


def run_trial(params: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    """Tune trial function: fit the run's trainer, make sure it has a result, report its status."""
    job = jobs[params["run_id"]]
    config = RunConfig.model_validate(job["config"])
    cluster = ClusterSpec.model_validate(job["cluster"])
    run = config.run_files()
    try:
        with tempfile.TemporaryDirectory(prefix="prunebench-train-") as ray_storage:
            build_trainer(config, cluster, ray_storage).fit()
    except Exception as exc:  # Ray gave up after `max_failures` restarts, or the trial broke: record why
        record_failure(run, config, failure_reason(exc))
    record = run.read_result() or {}
    tune.report({"status": record.get("status", "failed"), "error": record.get("error")})
