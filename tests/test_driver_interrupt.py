"""A grid driver killed mid-grid: `submit --resume` finishes only the unfinished runs, the
finished results stay byte-identical, and no run appears twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import REPO

METHODS = ["dense", "global", "dt"]


def write_grid(tmp_path: Path) -> Path:
    grid = {
        "experiment": "interrupt",
        "storage_path": str(tmp_path / "runs"),
        "base": {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64}},
        "axes": {"method": {
            "dense": {"phases": {"dense": 2}},
            "global": {"phases": {"dense": 1, "prune": 1, "finetune": 1}, "target_compression": 2.0},
            "dt": {"phases": {"prune": 6}, "target_compression": 2.0},
        }},  # fmt: skip
        "cluster": {"workers_per_run": 1, "cpus_per_worker": 0.5, "max_concurrent_runs": 1, "max_failures": 0},
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def finished(experiment: Path) -> dict[Path, bytes]:
    results = {}
    for path in experiment.glob("*/result.json"):
        if json.loads(path.read_text())["status"] == "finished":
            results[path] = path.read_bytes()
    return results


def test_killed_driver_resumes_without_redoing_or_duplicating(tmp_path):
    grid = write_grid(tmp_path)
    experiment = tmp_path / "runs" / "interrupt"
    driver = subprocess.Popen([sys.executable, "-m", "prunebench", "submit", str(grid)], cwd=REPO, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not finished(experiment) and time.monotonic() < deadline:
        assert driver.poll() is None, "the grid ended before it could be interrupted"
        time.sleep(0.5)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local cluster it started
    driver.wait()
    before = finished(experiment)
    assert 1 <= len(before) < len(METHODS), "kill landed after the whole grid finished"

    resumed = subprocess.run([sys.executable, "-m", "prunebench", "submit", str(grid), "--resume"], cwd=REPO,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = finished(experiment)
    assert len(after) == len(METHODS)
    for path, content in before.items():
        assert after[path] == content, f"{path} was rewritten"
    methods = [json.loads(p.read_text())["method"] for p in experiment.glob("*/result.json")]
    assert sorted(methods) == sorted(METHODS), "a run appears twice or is missing"
