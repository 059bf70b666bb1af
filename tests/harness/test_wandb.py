"""The W&B mirror: modes, rank 0 only, offline runs that match result.json, no secrets in files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.records import read_result

from prunebench.core.device import Worker
from prunebench.harness.lifecycle import execute_run
from prunebench.harness.tracking import start_tracking, wandb_mode
from prunebench.harness.validation import validate_run_config

pytestmark = pytest.mark.slow  # whole runs mirrored to W&B offline: not in `make test-fast`

FAKE_KEY = "fake-secret-0123456789"


def tiny_config(tmp_path: Path, wandb: str) -> object:
    return validate_run_config({
        "experiment": "wb",
        "model": {"name": "lenet_300_100"},
        "data": {"name": "digits", "layout": "flat", "batch_size": 64},
        "method": {"name": "global", "hparams": {"schedule": "one_shot"}},
        "phases": {"dense": 1, "prune": 1},
        "target_compression": 2.0,
        "output_dir": str(tmp_path / "runs"),
        "wandb": wandb,
    })  # fmt: skip


def offline_summary(run_dir: Path) -> dict:
    """What the offline run holds, read without a server (W&B's public API cannot read offline runs)."""
    (log,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    wandb_cli = Path(sys.executable).parent / "wandb"
    done = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json", str(log)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    assert wandb_mode("auto") == "online"
    assert wandb_mode("offline") == "offline" and wandb_mode("disabled") is None


def test_only_rank_0_mirrors(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, "offline")
    assert start_tracking(config, tmp_path / "rank1", Worker(rank=1, world_size=2)) is None
    assert start_tracking(tiny_config(tmp_path, "disabled"), tmp_path / "off") is None
    assert not (tmp_path / "rank1").exists() and not (tmp_path / "off").exists()


def test_offline_run_matches_result_and_holds_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    config = tiny_config(tmp_path, "offline")
    record = execute_run(config).model_dump()  # the lifecycle opens and closes the mirror
    run_dir = config.run_files().local_path()

    summary = offline_summary(run_dir)
    assert summary["state"] == "finished" and summary["name"] == config.run_id()
    assert summary["summary"]["top1"] == pytest.approx(read_result(run_dir)["top1"])
    assert summary["summary"]["compression_rate"] == pytest.approx(record["compression_rate"])
    assert summary["summary"]["status"] == "finished" and summary["step"] == config.phases.total_epochs()
    assert summary["config"]["method"]["name"] == "global"
    leaked = [path for path in tmp_path.rglob("*") if path.is_file() and FAKE_KEY.encode() in path.read_bytes()]
    assert leaked == []


def test_an_online_start_that_fails_falls_back_to_offline_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """W&B online to a server that is not there (a closed loopback port: nothing leaves this
    machine), with its start bounded: the run finishes, mirrored offline, and says so once."""
    import time

    from support.corpus import closed_port

    from prunebench.harness import tracking

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(tracking, "WANDB_START_S", 5)
    began = time.monotonic()
    record = execute_run(tiny_config(tmp_path, "online"))
    assert record.finished and time.monotonic() - began < 120
    warnings = [line for line in capsys.readouterr().err.splitlines() if "W&B online did not start" in line]
    assert len(warnings) == 1 and "mirroring offline instead" in warnings[0]
    assert list((tmp_path / "runs" / "wb" / record.run_id).glob("wandb/offline-run-*"))
