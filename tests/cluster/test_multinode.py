"""A Ray cluster started as the README starts one (tests/support/ray_nodes.py): a head of no CPU and
two worker nodes of one CPU each. Grids go in through `prunebench submit --address` and
through `ray job submit` as the README writes it; then the second worker node is lost in the
middle of a run."""

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

# One DDP worker of 0.9 CPU per run: a worker node (1 CPU) holds one run's worker at a time, so
# two runs at a time take both; the runs' Tune trials (no CPU) are on the head.
CLUSTER = {"workers_per_run": 1, "cpus_per_worker": 0.9, "max_concurrent_runs": 2, "max_failures": 2}
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


def worker_node_ids(cluster: RayCluster) -> set[str]:
    return {node.node_id for node in cluster.nodes[1:]}


def write_grid(directory: Path, experiment: str, seeds: list[int], phases: dict[str, int]) -> Path:
    grid = {"experiment": experiment, "storage_path": str(directory / "runs"), "base": {**TINY, "phases": phases},
            "axes": {"method": ["dense"], "seed": seeds}, "cluster": CLUSTER}  # fmt: skip
    path = directory / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def records(experiment_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(experiment_dir.glob("*/result.json"))]


def actors_logged_on(node: RayNode, class_name: str) -> int:
    """How many actors of `class_name` the node ran: each worker process's log names its actor."""
    return sum(f":actor_name:{class_name}\n" in text for text in node.logs("worker-*.out"))


def test_a_grid_submitted_with_an_address_trains_on_both_worker_nodes_with_its_trials_on_the_head(cluster: RayCluster, tmp_path: Path) -> None:
    grid = write_grid(tmp_path, "spread", seeds=[0, 1, 2, 3], phases={"dense": 1})
    result = run_cli("submit", str(grid), "--address", cluster.address, env=cluster.env)
    assert result.returncode == 0, result.stderr[-3000:]
    done = records(tmp_path / "runs" / "spread")
    assert [record["status"] for record in done] == ["finished"] * 4
    assert {record["environment"]["node_id"] for record in done} == worker_node_ids(cluster)
    head, *workers = cluster.nodes
    # Tune's trial actor (ImplicitFunc) and the Train controller beside it: on the head only
    for name in ("ImplicitFunc", "TrainController"):
        assert [actors_logged_on(node, name) for node in workers] == [0, 0], f"a {name} ran on a worker node"
        assert actors_logged_on(head, name) >= 4, f"not every run's {name} ran on the head"


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
    job = subprocess.run([RAY, *words[1:], *shrink], cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=900)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    assert re.search(r"Job 'raysubmit_\w+' succeeded", job.stdout + job.stderr)

    (record,) = records(tmp_path / "runs" / "smoke")
    assert record["status"] == "finished" and record["model"] == "lenet_300_100"
    assert record["environment"]["node_id"] in worker_node_ids(cluster)
    board = tmp_path / "runs" / LEADERBOARD_FILE.format(experiment="smoke")
    assert board.is_file() and record["run_id"] in board.read_text()
    assert f"leaderboard: {board}" in job.stdout  # the driver's own output, streamed back

    jobs = subprocess.run([RAY, "job", "list", "--address", cluster.dashboard], env=cluster.env, capture_output=True, text=True, timeout=120)
    assert re.findall(r"driver_node_id='(\w+)'", jobs.stdout) == [cluster.nodes[0].node_id], "the driver ran on the head"


def runs_logged_on(node: RayNode, run_ids: list[str]) -> list[str]:
    """The runs whose rank 0 trains on `node`: its progress bar (named by the run id) is in the
    node's worker logs."""
    logs = "".join(node.logs("worker-*.err"))
    return [run_id for run_id in run_ids if f"{run_id}: " in logs]


def test_a_run_on_a_lost_node_continues_on_the_other_from_its_last_epoch(cluster: RayCluster, tmp_path: Path) -> None:
    epochs = 40  # ~0.2 s each: the run outlives the node by many epochs
    grid = write_grid(tmp_path, "loss", seeds=[0, 1], phases={"dense": epochs})  # two at a time: one on each node
    run_ids = [run.config.run_id() for run in expand_grid(load_grid(grid), str(grid))]
    experiment_dir = tmp_path / "runs" / "loss"
    _, first, second = cluster.nodes  # the head, and the worker nodes
    seen: dict[str, Any] = {}

    def lose_the_second_node_after_an_epoch_of_its_run() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and "state" not in seen:
            for run_id in runs_logged_on(second, run_ids):
                state = saved_checkpoint(experiment_dir / run_id)
                if state is not None and not (experiment_dir / run_id / "result.json").exists():
                    seen.update(state=state, run_id=run_id)
                    os.kill(second.raylet_pid(), signal.SIGKILL)
                    break
            time.sleep(0.2)

    killer = threading.Thread(target=lose_the_second_node_after_an_epoch_of_its_run)
    killer.start()
    result = run_cli("submit", str(grid), "--address", cluster.address, env=cluster.env)
    killer.join()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "state" in seen, "the second node was not lost while its run trained"

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
