"""Grids on a real local Ray cluster (started here, shut down after): DDP runs with a shared
dense stage, idempotent resubmission, the W&B mirror, and a restart after rank 0 is killed on
both paths: a one-worker run's Tune trial (it trains the run itself) and a DDP run's Ray Train worker."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import ray
import yaml
from support.cli import CliResult, assert_one_line_error
from support.ray_nodes import actor_class
from support.records import read_result, saved_checkpoint

from prunebench.cluster.grid import expand_grid, load_grid
from prunebench.cluster.session import RUNTIME_ENV
from prunebench.cli import main

pytestmark = pytest.mark.slow  # grids on an embedded Ray cluster: not in `make test-fast`

FAKE_KEY = "fake-secret-0123456789"
DRIVER_STDERR = "submit.stderr"  # what the grid's driver printed on stderr
TINY_BASE = {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64}, "wandb": "offline"}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One small cluster for the module; workers inherit a recognisable fake W&B key."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_API_KEY", FAKE_KEY)
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, runtime_env=RUNTIME_ENV)
        try:
            yield
        finally:
            ray.shutdown()


def write_grid(directory: Path, experiment: str, axes: dict[str, Any], base: dict[str, Any], **fields: Any) -> Path:
    grid = {"experiment": experiment, "storage_path": str(directory / "runs"), "base": base, "axes": axes,
            "cluster": {"workers_per_run": 2, "cpus_per_worker": 0.5, "max_concurrent_runs": 2, "max_failures": 2}, **fields}  # fmt: skip
    path = directory / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def file_contents(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def ddp_grid(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """dense + global on 2 DDP workers each; global prunes the dense run's model (shared dense
    stage), so its own 5 dense epochs become the stage's 1."""
    directory = tmp_path_factory.mktemp("ddp")
    axes = {"method": {"dense": {"phases": {"dense": 1}},
                       "global": {"phases": {"dense": 5, "prune": 1, "finetune": 1}, "target_compression": 2.0}}}  # fmt: skip
    path = write_grid(directory, "ddp", axes, TINY_BASE, shared_dense=True)
    with contextlib.redirect_stderr(io.StringIO()) as driver:
        code = main(["submit", str(path)])
    (directory / DRIVER_STDERR).write_text(driver.getvalue())  # beside the grid, outside its runs
    return path, directory / "runs" / "ddp", code


def test_grid_runs_as_ddp_jobs_from_a_shared_dense_stage(ddp_grid: tuple[Path, Path, int]) -> None:
    _, experiment_dir, code = ddp_grid
    assert code == 0
    records = {record["method"]: record for record in map(read_result, experiment_dir.iterdir())}
    assert set(records) == {"dense", "global"}
    assert all(record["status"] == "finished" and record["environment"]["world_size"] == 2 for record in records.values())
    dense, pruned = records["dense"], records["global"]
    assert pruned["config"]["model"]["dense_stage"]["run_id"] == dense["run_id"]
    assert pruned["epochs"] == 3 and [entry["epoch"] for entry in pruned["trail"]] == [2, 3]
    assert not list(experiment_dir.glob("*/checkpoint.pt")), "checkpoints of finished runs are removed"


def test_every_run_keeps_its_train_log_and_the_driver_shows_its_epoch_lines(ddp_grid: tuple[Path, Path, int]) -> None:
    path, experiment_dir, _ = ddp_grid
    driver = (path.parent / DRIVER_STDERR).read_text().splitlines()
    for run_dir in experiment_dir.iterdir():
        log = (run_dir / "train.log").read_text().splitlines()
        epochs = [line for line in log if " live model: " in line]
        assert len(epochs) == len(read_result(run_dir)["trail"]) and any(" step " in line and " img/s " in line for line in log)
        assert f"{run_dir.name}: {epochs[-1]}" in driver, "the driver shows the run's epoch line"


def test_resubmitting_starts_nothing_and_changes_nothing(ddp_grid: tuple[Path, Path, int], capsys: pytest.CaptureFixture) -> None:
    path, experiment_dir, _ = ddp_grid
    before = file_contents(experiment_dir)
    capsys.readouterr()
    assert main(["submit", str(path)]) == 0
    assert "2 run(s) (2 finished)" in capsys.readouterr().out
    assert file_contents(experiment_dir) == before


def test_wandb_mirror_is_rank_0_only_and_holds_no_secret(ddp_grid: tuple[Path, Path, int]) -> None:
    _, experiment_dir, _ = ddp_grid
    for run_dir in experiment_dir.iterdir():
        assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
    assert [path for path, content in file_contents(experiment_dir.parent).items() if FAKE_KEY.encode() in content] == []


def test_more_gpus_than_the_cluster_has_is_bad_input(ddp_grid: tuple[Path, Path, int], capsys: pytest.CaptureFixture) -> None:
    path, experiment_dir, _ = ddp_grid
    before = file_contents(experiment_dir)
    capsys.readouterr()
    result = CliResult(main(["submit", str(path), "--set", "cluster.gpus_per_worker=1"]), *capsys.readouterr())
    assert_one_line_error(result, "cluster.gpus_per_worker: a run needs 2 GPUs")
    assert file_contents(experiment_dir) == before


def actor_pids() -> dict[str, list[int]]:
    """The Ray actor processes of this process's cluster (its descendants), by actor class."""
    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    actors: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not actor_class(int(entry.name)):
            continue
        pid = int(entry.name)
        try:
            while pid > 1 and pid != os.getpid():
                pid = parent(pid)
        except OSError:  # the process ended while we looked
            continue
        if pid == os.getpid():
            actors.setdefault(actor_class(int(entry.name)), []).append(int(entry.name))
    return actors


# The process that trains rank 0, by path: the Tune trial itself, or the first Ray Train worker.
RANK_0_ACTOR = {1: "ImplicitFunc", 2: "RayTrainWorker"}


@pytest.mark.parametrize("workers", [1, 2], ids=["in-trial", "torch-trainer"])
def test_killed_worker_restarts_from_its_last_epoch(ray_cluster: None, tmp_path: Path, workers: int) -> None:
    base = {"model": {"name": "resnet20"}, "data": {"name": "digits", "batch_size": 64}, "phases": {"dense": 3}, "wandb": "disabled"}  # the fake key: auto would go online
    cluster = {"workers_per_run": workers, "cpus_per_worker": 0.5, "max_concurrent_runs": 1, "max_failures": 2}
    # a URI storage path: the run's files, checkpoints included, go through pyarrow.fs
    path = write_grid(tmp_path, "kill", {"method": ["dense"]}, base, storage_path=f"file://{tmp_path}/runs", cluster=cluster)
    (run,) = expand_grid(load_grid(path), str(path))
    run_dir = tmp_path / "runs" / "kill" / run.config.run_id()
    seen: dict[str, Any] = {}

    def kill_rank_0_after_the_first_epoch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and "state" not in seen:
            state = saved_checkpoint(run_dir)
            if state is not None and not (run_dir / "result.json").exists():
                seen["state"], seen["actors"] = state, actor_pids()
                os.kill(seen["actors"][RANK_0_ACTOR[workers]][0], signal.SIGKILL)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_rank_0_after_the_first_epoch)
    killer.start()
    assert main(["submit", str(path)]) == 0
    killer.join()

    assert "state" in seen, "no checkpoint was saved before the run finished"
    actors = seen["actors"]
    if workers == 1:  # the trial trained the run itself: no Ray Train job
        assert len(actors["ImplicitFunc"]) == 1 and not {"TrainController", "RayTrainWorker"} & set(actors), actors
    else:
        assert len(actors["RayTrainWorker"]) == 2 and len(actors["TrainController"]) == 1, actors
        assert not {"PreemptionWatcher", "DatasetManager"} & set(actors), f"a Ray Train helper a run does not need: {actors}"
    restored = seen["state"]
    assert 1 <= restored["epoch"] < 3, "the worker died in the middle of the run"
    record = read_result(run_dir)
    assert record["status"] == "finished" and record["epochs"] == 3 and record["environment"]["world_size"] == workers
    assert [entry["epoch"] for entry in record["trail"]] == [1, 2, 3]
    assert record["trail"][: restored["epoch"]] == restored["trail"], "epochs before the kill were not trained again"
    epoch_lines = [line for line in (run_dir / "train.log").read_text().splitlines() if " live model: " in line]
    assert epoch_lines[-1].startswith("epoch   3/3"), "the run's log reached its URI storage, with the restarted attempt's lines"

    # the same grid, never interrupted, into another storage path: the same run, the same numbers
    straight = write_grid(tmp_path, "kill", {"method": ["dense"]}, base, storage_path=f"file://{tmp_path}/straight", cluster=cluster)
    assert main(["submit", str(straight)]) == 0
    reference = read_result(tmp_path / "straight" / "kill" / run.config.run_id())
    untimed = lambda trail: [{k: v for k, v in entry.items() if k != "seconds"} for entry in trail]  # noqa: E731
    assert untimed(record["trail"]) == untimed(reference["trail"])
    assert (record["top1"], record["top5"]) == (reference["top1"], reference["top5"])
