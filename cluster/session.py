"""The Ray connection of `prunebench submit`: an embedded local cluster, or an existing one.

An unreachable address fails within seconds instead of waiting on Ray's reconnection loop, and
a grid that asks for more than the cluster has fails before anything is scheduled (Ray would
wait for the resources forever).
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Iterator

import ray

from prunebench.cluster.address import split_address
from prunebench.cluster.grid import ClusterSpec
from prunebench.core.errors import UserError, first_line

CONNECT_TIMEOUT_S = 5.0
# Ray Train settings for multi-worker runs, each overridden by the driver's own environment
# (ray/train/v2/_internal/constants.py): no preemption watcher, an actor per run that only
# reports spot-instance preemptions (set RAY_TRAIN_ENABLE_PREEMPTION_WATCHER=1 on a cluster of
# spot nodes); the controller polls its workers every 0.5 s instead of 2 s, so that a run's end
# (and a worker's failure) is seen sooner.
TRAIN_SETTINGS = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5"}
# Trials and workers keep the driver's working directory, so that relative paths in configs
# (data.root defaults to data/NAME) mean the same as for `prunebench run`. Ray Train's print
# patch stays off: it sends a print to sys.stderr a second time (through Train's logger), so a
# run's train.log (harness.runlog) would hold every line twice.
RUNTIME_ENV = {"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0", "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
                            **{name: os.environ.get(name, value) for name, value in TRAIN_SETTINGS.items()}}}


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """HOST:PORT (or ray://HOST:PORT) must accept a TCP connection; 'auto' is left to Ray."""
    if address in ("auto", "local"):
        return
    where = split_address(address)
    if where is None:
        raise UserError(f"--address {address}: expected HOST:PORT (a port in 1-65535), ray://HOST:PORT or auto")
    try:
        socket.create_connection(where, timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"--address {address}: cannot reach the Ray cluster ({exc.strerror or exc.__class__.__name__})") from None


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Connect to `address`, or start a local cluster sized to this machine; disconnect (and stop
    the local cluster) afterwards. An existing connection in this process is used as it is."""
    if address is None and ray.is_initialized():
        yield
        return
    if address is None:  # "local": a new cluster of our own, never one someone else started here
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, runtime_env=RUNTIME_ENV)
    else:
        check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, runtime_env=RUNTIME_ENV)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"--address {address}: {first_line(exc, exc.__class__.__name__)}") from None
    try:
        yield
    finally:
        ray.shutdown()


def check_resources(spec: ClusterSpec) -> None:
    """One run must fit into the cluster as it is now."""
    available = ray.cluster_resources()
    gpus = spec.workers_per_run * spec.gpus_per_worker
    if gpus > available.get("GPU", 0):
        raise UserError(
            f"cluster.gpus_per_worker: a run needs {gpus:g} GPUs ({spec.workers_per_run} workers x {spec.gpus_per_worker:g}), "
            f"the cluster has {available.get('GPU', 0):g}"
        )
    cpus = spec.workers_per_run * spec.cpus_per_worker  # a run's Tune trial is its worker, or asks for no CPU
    if cpus > available.get("CPU", 0):
        raise UserError(
            f"cluster.cpus_per_worker: a run needs {cpus:g} CPUs ({spec.workers_per_run} workers x {spec.cpus_per_worker:g}), "
            f"the cluster has {available.get('CPU', 0):g}; fractional cpus_per_worker are allowed"
        )
