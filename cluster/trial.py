"""One run as one Ray Tune trial, on one of two paths that differ only in who calls the run
lifecycle (cluster/worker.py) and how the rank is known:

- one worker (`workers_per_run: 1`): the trial is the run's worker. It asks for the worker's
  CPUs/GPUs itself, so Ray places it on a node that has them (never on a head started with
  `--num-cpus 0`), and calls the lifecycle as rank 0 of 1: no Ray Train job, none of its
  helper processes. A trial lost with its process or its node is started again by Tune (up
  to `cluster.max_failures` times, the driver's `tune.FailureConfig`) and resumes from the
  run's checkpoint.
- several workers: the trial only waits for a Ray Train job (`TorchTrainer`, DDP) whose
  workers hold the resources. Such trials, and with them their Train controllers (Ray places
  a controller beside its trial), live on the head node, so a lost worker node takes only the
  workers it held: a controller lost with its node would leave its run's placement group
  reserving CPUs or GPUs on the remaining nodes for as long as the driver lives, which a
  restarted run can wait on forever. Ray Train restarts the worker group after a failure (up
  to `cluster.max_failures` times) and the workers resume from the run's checkpoint.

The run's checkpoints live in its run directory (harness.checkpoints). A run that still cannot
finish gets a failed record, so that every run of the grid ends with exactly one result.json.
"""

from __future__ import annotations

import tempfile
from typing import Any, Iterable

import ray.train
from ray import tune
from ray.train.torch import TorchConfig, TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback

from prunebench.cluster.grid import MAX_CONCURRENT_RUNS, ClusterSpec
from prunebench.cluster.worker import run_rank, train_worker
from prunebench.core.device import Worker
from prunebench.core.errors import error_line
from prunebench.harness.config import RunConfig
from prunebench.harness.lifecycle import record_failure

HEAD_NODE_RESOURCE = "node:__internal_head__"  # Ray gives every head node 1 of it (its own Train state actor asks for it too)
# a multi-worker run's trial: no CPU (a head started with --num-cpus 0 takes it too), and a
# share of the head resource small enough for the most runs a grid may run at a time
WAITING_TRIAL_RESOURCES = {"CPU": 0, HEAD_NODE_RESOURCE: 1 / MAX_CONCURRENT_RUNS}


def trains_in_trial(cluster: ClusterSpec) -> bool:
    """A one-worker run trains in its Tune trial; a multi-worker run in a Ray Train job."""
    return cluster.workers_per_run == 1


def worker_resources(cluster: ClusterSpec) -> dict[str, float]:
    """What one of the run's workers asks Ray for."""
    gpus = {"GPU": cluster.gpus_per_worker} if cluster.gpus_per_worker > 0 else {}
    return {"CPU": cluster.cpus_per_worker, **gpus}


def trial_resources(cluster: ClusterSpec) -> dict[str, float]:
    """A trial that is the run's worker asks for the worker's resources; one that waits for
    its Train job asks for almost nothing, on the head."""
    return worker_resources(cluster) if trains_in_trial(cluster) else WAITING_TRIAL_RESOURCES


class TrainerOfOwnData(TorchTrainer):
    """A `TorchTrainer` for runs that load their own data (DALI, torchvision), not Ray Data's:
    Ray Train gives every trainer a DatasetsCallback (DataParallelTrainer._create_default_callbacks
    in ray/train/v2/api/data_parallel_trainer.py), which starts a DatasetManager actor per run
    even without datasets (RayDatasetShardProvider.__init__ in
    ray/train/v2/_internal/callbacks/datasets.py); a worker then gets no shard provider, which
    it accepts (Worker.init_train_context in ray/train/v2/_internal/execution/worker_group/worker.py)."""

    def _create_default_callbacks(self) -> list[Any]:
        return [callback for callback in super()._create_default_callbacks() if not isinstance(callback, DatasetsCallback)]


def job_payload(config: RunConfig, cluster: ClusterSpec) -> dict[str, Any]:
    """What a trial needs to run one config, as plain data."""
    return {"config": config.model_dump(mode="json"), "cluster": cluster.model_dump()}


def build_trainer(config: RunConfig, cluster: ClusterSpec, ray_storage: str) -> TorchTrainer:
    """DDP over `workers_per_run` workers: NCCL when the run asks for GPUs, gloo on CPUs."""
    use_gpu = cluster.gpus_per_worker > 0
    return TrainerOfOwnData(
        train_worker,
        train_loop_config={"config": config.model_dump(mode="json")},
        scaling_config=ray.train.ScalingConfig(num_workers=cluster.workers_per_run, use_gpu=use_gpu, resources_per_worker=worker_resources(cluster)),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=ray.train.RunConfig(
            name=config.run_id(),
            storage_path=ray_storage,  # Ray Train's own bookkeeping; our checkpoints are in the run directory
            failure_config=ray.train.FailureConfig(max_failures=cluster.max_failures),
        ),
    )


def failure_reason(exc: BaseException) -> str:
    """One line: the first worker's (or Ray Train controller's) error, else the trial's own."""
    if not isinstance(exc, ray.train.TrainingFailedError):
        return error_line(exc)
    causes = list(getattr(exc, "worker_failures", {}).values()) or [getattr(exc, "controller_failure", exc)]
    return f"Ray Train gave up on the run: {error_line(causes[0])}"


def run_trial(params: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> None:
    """Tune trial function: train the run (here, or through its trainer), report its status.
    An error of a one-worker run leaves the trial, so that Tune starts it again."""
    job = jobs[params["run_id"]]
    config = RunConfig.model_validate(job["config"])
    cluster = ClusterSpec.model_validate(job["cluster"])
    run = config.run_files()
    if trains_in_trial(cluster):
        run_rank(config, Worker())
    else:
        try:
            with tempfile.TemporaryDirectory(prefix="prunebench-train-") as ray_storage:
                build_trainer(config, cluster, ray_storage).fit()
        except Exception as exc:  # Ray Train gave up after `max_failures` restarts, or the trial broke: record why
            record_failure(run, config, failure_reason(exc))
    record = run.read_result() or {}
    tune.report({"status": record.get("status", "failed"), "error": record.get("error")})


def record_abandoned_trials(results: Iterable[tune.Result], jobs: dict[str, dict[str, Any]]) -> None:
    """A trial Tune gave up on (failed more than `max_failures` times) may leave its run
    without a result: record the run as failed, with the trial's last error."""
    for result in results:
        if result.error is None:
            continue
        config = RunConfig.model_validate(jobs[result.config["run_id"]]["config"])
        run = config.run_files()
        if run.read_result() is None:
            record_failure(run, config, f"Ray Tune gave up on the run: {failure_reason(result.error)}")
