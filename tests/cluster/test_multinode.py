"""A Ray cluster started as the README starts one (tests/support/ray_nodes.py): a head of no CPU and
two worker nodes of one CPU each. Grids go in through `prunebench submit --address` and
through `ray job submit` as the README writes it; then a worker node is lost in the middle of
a run. One-worker runs train in their Tune trials, on the worker nodes; two-worker runs in Ray
Train jobs whose trials and controllers are on the head: each test says which path ran by the
actors the nodes' logs name."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from support.cli import REPO, run_cli
from support.records import read_result, saved_checkpoint
from support.ray_nodes import RAY, RayCluster, RayNode

from prunebench.cluster.grid import expand_grid, load_grid
from prunebench.cluster.submit import LEADERBOARD_FILE

pytestmark = pytest.mark.cluster

# 0.9 CPU per run: a worker node (1 CPU) holds one run at a time, so two runs at a time take
# both; a two-worker run packs its two workers onto one node.
CLUSTERS = {1: {"workers_per_run": 1, "cpus_per_worker": 0.9, "max_concurrent_runs": 2, "max_failures": 2},
            2: {"workers_per_run": 2, "cpus_per_worker": 0.45, "max_concurrent_runs": 2, "max_failures": 2}}  # fmt: skip
PATHS = pytest.mark.parametrize("workers", [1, 2], ids=["in-trial", "torch-trainer"])
TINY = {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64}, "wandb": "disabled", "threads": 1}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    ray_cluster = RayCluster()
    try:
        ray_cluster.start_head(num_cpus=0)  # as the README starts it: no training on the head
        ray_cluster.add_nodes(1, 1)
        yield ray_cluster
    finally:
        ray_cluster.stop()


def worker_nodes(cluster: RayCluster) -> list[RayNode]:
    """The live worker nodes, two of them: one is started again where a test lost one."""
    while len([node for node in cluster.nodes[1:] if node.alive()]) < 2:
        cluster.add_nodes(1)
    return [node for node in cluster.nodes[1:] if node.alive()]


def write_grid(directory: Path, experiment: str, seeds: list[int], phases: dict[str, int], workers: int) -> Path:
    grid = {"experiment": experiment, "storage_path": str(directory / "runs"), "base": {**TINY, "phases": phases},
            "axes": {"method": ["dense"], "seed": seeds}, "cluster": CLUSTERS[workers]}  # fmt: skip
    path = directory / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def records(experiment_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(experiment_dir.glob("*/result.json"))]


def actors_logged_on(node: RayNode, class_name: str) -> int:
    """How many actors of `class_name` the node ran: each worker process's log names its actor."""
    return sum(f":actor_name:{class_name}\n" in text for text in node.logs("worker-*.out"))


ACTORS = ("ImplicitFunc", "TrainController", "RayTrainWorker")  # Tune's trial actor, and Ray Train's


def actor_counts(nodes: list[RayNode]) -> dict[str, list[int]]:
    return {name: [actors_logged_on(node, name) for node in nodes] for name in ACTORS}


def new_actors(before: dict[str, list[int]], nodes: list[RayNode]) -> dict[str, list[int]]:
    """Actors each node started since `before` (the logs of a node only grow)."""
    return {name: [now - then for now, then in zip(counts, before[name])] for name, counts in actor_counts(nodes).items()}


def assert_path(started: dict[str, list[int]], workers: int, runs: int) -> None:
    """Which path the runs took, from the actors each node started ([head, worker nodes...]).
    Tune reuses a trial's process for the next run (cluster/submit.py), so a run has a trial
    process but not always its own; every Ray Train job starts its own controller and workers."""
    (head_trials, *trials), (head_controllers, *controllers), (head_workers, *train_workers) = started.values()
    if workers == 1:  # the trials trained on the worker nodes, without a Ray Train job
        assert head_trials == 0 and sum(trials) >= 1, started
        assert head_controllers + sum(controllers) + head_workers + sum(train_workers) == 0, started
    else:  # trials and their Train controllers on the head, Train workers on the worker nodes
        assert sum(trials) == sum(controllers) == 0 and head_trials >= 1 and head_controllers >= runs, started
        assert head_workers == 0 and sum(train_workers) >= workers * runs, started


@PATHS
def test_a_grid_submitted_with_an_address_trains_on_both_worker_nodes(cluster: RayCluster, tmp_path: Path, workers: int) -> None:
    nodes = [cluster.nodes[0], *worker_nodes(cluster)]
    before = actor_counts(nodes)
    grid = write_grid(tmp_path, "spread", seeds=[0, 1, 2, 3], phases={"dense": 1}, workers=workers)
    result = run_cli("submit", str(grid), "--address", cluster.address, env=cluster.env)
    assert result.returncode == 0, result.stderr[-3000:]
    done = records(tmp_path / "runs" / "spread")
    assert [record["status"] for record in done] == ["finished"] * 4
    assert {record["environment"]["world_size"] for record in done} == {workers}
    assert {record["environment"]["node_id"] for record in done} == {node.node_id for node in nodes[1:]}
    assert_path(new_actors(before, nodes), workers, runs=4)


def test_ray_job_submit_as_the_readme_writes_it_runs_the_driver_on_the_head(cluster: RayCluster, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    (command,) = re.findall(r"^ray job submit .*\\\n\s+python -m prunebench submit .*$", readme, flags=re.M)
    words = command.replace("\\\n", " ").split()
    words[words.index("--address") + 1] = cluster.dashboard  # http://HEAD:8265
    storage = words.index("--set") + 1
    assert words[storage].startswith("storage_path=")
    words[storage] = f"storage_path={tmp_path / 'runs'}"  # a directory all nodes share (one machine here)
    shrink = ["--set", "axes.method={dense: {phases: {dense: 1}}}", "--set", "axes.model=[lenet_300_100]",
              "--set", "axes.data=[{name: digits, layout: flat}]", "--set", "base={wandb: disabled, threads: 1}"]  # fmt: skip
    assert words[0] == "ray" and words[words.index("--") + 1] == "python"
    nodes = [cluster.nodes[0], *worker_nodes(cluster)]
    before = actor_counts(nodes)
    job = subprocess.run([RAY, *words[1:], *shrink], cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    assert re.search(r"Job 'raysubmit_\w+' succeeded", job.stdout + job.stderr)

    (record,) = records(tmp_path / "runs" / "smoke")
    assert record["status"] == "finished" and record["model"] == "lenet_300_100"
    assert record["environment"]["node_id"] in {node.node_id for node in nodes[1:]}
    assert_path(new_actors(before, nodes), workers=1, runs=1)  # the smoke grid's one worker per run
    board = tmp_path / "runs" / LEADERBOARD_FILE.format(experiment="smoke")
    assert board.is_file() and record["run_id"] in board.read_text()
    assert f"leaderboard: {board}" in job.stdout  # the driver's own output, streamed back

    jobs = subprocess.run([RAY, "job", "list", "--address", cluster.dashboard], env=cluster.env, capture_output=True, text=True, timeout=120)
    assert re.findall(r"driver_node_id='(\w+)'", jobs.stdout) == [cluster.nodes[0].node_id], "the driver ran on the head"


def runs_logged_on(node: RayNode, run_ids: list[str]) -> list[str]:
    """The runs whose rank 0 trains on `node`: the run's first line (`<run id>: starts: ...`) is
    in the node's worker logs."""
    logs = "".join(node.logs("worker-*.err"))
    return [run_id for run_id in run_ids if f"{run_id}: " in logs]


@PATHS
def test_a_run_on_a_lost_node_continues_on_the_other_from_its_last_epoch(cluster: RayCluster, tmp_path: Path, workers: int) -> None:
    epochs = 40  # ~0.2 s each: the run outlives the node by many epochs
    grid = write_grid(tmp_path, "loss", seeds=[0, 1], phases={"dense": epochs}, workers=workers)  # two at a time: one on each node
    run_ids = [run.config.run_id() for run in expand_grid(load_grid(grid), str(grid))]
    experiment_dir = tmp_path / "runs" / "loss"
    first, second = worker_nodes(cluster)
    nodes = [cluster.nodes[0], first, second]
    before = actor_counts(nodes)
    seen: dict[str, Any] = {}
    submitted = threading.Event()  # the grid ended: nothing left to lose a node under

    def lose_the_second_node_after_an_epoch_of_its_run() -> None:
        while not submitted.is_set() and "state" not in seen:
            for run_id in runs_logged_on(second, run_ids):
                state = saved_checkpoint(experiment_dir / run_id)
                if state is not None and not (experiment_dir / run_id / "result.json").exists():
                    seen.update(state=state, run_id=run_id, started=new_actors(before, nodes))
                    os.kill(second.raylet_pid(), signal.SIGKILL)
                    break
            time.sleep(0.2)

    killer = threading.Thread(target=lose_the_second_node_after_an_epoch_of_its_run)
    killer.start()
    try:
        result = run_cli("submit", str(grid), "--address", cluster.address, env=cluster.env)
    finally:
        submitted.set()
        killer.join()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "state" in seen, "the second node was not lost while its run trained"
    assert_path(seen["started"], workers, runs=1)

    deadline = time.monotonic() + 60
    while second.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not second.alive(), "the node's `ray start --block` ends when its raylet is gone"
    assert sorted(experiment_dir.rglob("result.json")) == sorted(experiment_dir / run_id / "result.json" for run_id in run_ids)
    record, restored = read_result(experiment_dir / seen["run_id"]), seen["state"]
    assert record["status"] == "finished" and record["epochs"] == epochs
    assert record["environment"]["node_id"] == first.node_id != second.node_id, "the run ended on the remaining worker node"
    assert 1 <= restored["epoch"] < epochs
    assert [entry["epoch"] for entry in record["trail"]] == list(range(1, epochs + 1))
    # the epochs before the loss are the checkpoint's own entries, timings included: not trained again
    assert record["trail"][: restored["epoch"]] == restored["trail"]
