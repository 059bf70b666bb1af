"""A grid driver killed mid-grid: `submit --resume` finishes only the unfinished runs, the
finished results stay byte-identical, and no run appears twice. The same on a local directory
and on object storage (`s3://` on a moto server started here): results, per-epoch checkpoints,
the shared dense stage's model found by its run id, and the leaderboard read from the storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.cli import REPO, run_cli
from support.object_storage import BUCKET
from support.ray_nodes import actor_class, session_pids

from prunebench.core.storage import CHECKPOINT_FILE, RESULT_FILE, Storage

pytestmark = pytest.mark.cluster

METHODS = ["dense", "global", "dt"]
DENSE_EPOCHS = 6  # a LeNet epoch on digits is a fraction of a second: the checkpoints must be seen between them
EXPERIMENT = "interrupt"


def write_grid(tmp_path: Path, storage_path: str) -> Path:
    grid = {
        "experiment": EXPERIMENT,
        "storage_path": storage_path,
        "shared_dense": True,  # global starts from the dense run's model.pt, found by its run id
        "base": {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64}},
        "axes": {"method": {
            "dense": {"phases": {"dense": DENSE_EPOCHS}},
            "global": {"phases": {"dense": DENSE_EPOCHS, "prune": 1, "finetune": 1}, "target_compression": 2.0},
            "dt": {"phases": {"prune": 6}, "target_compression": 2.0},
        }},  # fmt: skip
        "cluster": {"workers_per_run": 1, "cpus_per_worker": 0.5, "max_concurrent_runs": 1, "max_failures": 0},
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def files_named(storage: Storage, name: str) -> list[str]:
    """Filesystem paths of every NAME under the experiment, local or remote alike."""
    return [path for path in storage.files(EXPERIMENT) if path.rsplit("/", 1)[-1] == name]


def finished(storage: Storage) -> dict[str, bytes]:
    results = {}
    for path in files_named(storage, RESULT_FILE):
        with storage.fs.open_input_stream(path) as stream:
            content = stream.read()
        if json.loads(content)["status"] == "finished":
            results[path] = content
    return results


@pytest.fixture(params=["local", "s3"])
def storage_path(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local directory, or a prefix of a bucket on the S3 server, reached as a user reaches
    one: AWS_ENDPOINT_URL and credentials in the environment, which the embedded Ray cluster's
    workers inherit."""
    if request.param == "local":
        return str(tmp_path / "runs")
    server = request.getfixturevalue("s3")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{BUCKET}/{tmp_path.name}"


def test_killed_driver_resumes_without_redoing_or_duplicating(tmp_path: Path, storage_path: str) -> None:
    grid = write_grid(tmp_path, storage_path)
    storage = Storage(storage_path)
    driver = subprocess.Popen([sys.executable, "-m", "prunebench", "submit", str(grid)], cwd=REPO, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline, checkpoints_seen, actors_seen = time.monotonic() + 300, set(), set()
    while not finished(storage) and time.monotonic() < deadline:
        assert driver.poll() is None, "the grid ended before it could be interrupted"
        checkpoints_seen.update(files_named(storage, CHECKPOINT_FILE))
        actors_seen.update(actor_class(pid) for pid in session_pids(driver.pid))  # the driver's own cluster
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local cluster it started
    driver.wait()
    before = finished(storage)
    assert 1 <= len(before) < len(METHODS), "kill landed after the whole grid finished"
    assert checkpoints_seen, "no run left an epoch checkpoint in the storage while it ran"
    # one worker per run: each Tune trial trains its run itself, no Ray Train job is started
    assert "ImplicitFunc" in actors_seen and not {"TrainController", "RayTrainWorker"} & actors_seen, actors_seen

    resumed = run_cli("submit", str(grid), "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = finished(storage)
    assert len(after) == len(METHODS)
    for path, content in before.items():
        assert after[path] == content, f"{path} was rewritten"
    records = {record["method"]: record for record in map(json.loads, after.values())}
    assert sorted(records) == sorted(METHODS), "a run appears twice or is missing"
    assert records["global"]["config"]["model"]["dense_stage"]["run_id"] == records["dense"]["run_id"]
    assert [entry["epoch"] for entry in records["global"]["trail"]] == [DENSE_EPOCHS + 1, DENSE_EPOCHS + 2], "global trained its own dense epochs"
    assert len(files_named(storage, "model.pt")) == len(METHODS)
    assert not files_named(storage, CHECKPOINT_FILE), "checkpoints of finished runs are removed"

    board = run_cli("leaderboard", f"{storage_path}/{EXPERIMENT}", "--format", "json", timeout=120)
    assert board.returncode == 0, board.stderr[-3000:]
    document = json.loads(board.stdout)
    assert not document["skipped"] and not document["failed"]
    ranked = {run_id for track in document["tracks"] for row in track["rows"] for run_id in row["run_ids"] or []}
    assert ranked == {record["run_id"] for record in records.values()}
