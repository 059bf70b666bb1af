"""The W&B mirror: modes, rank 0 only, offline runs that match result.json, no secrets in files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import REPO, assert_one_line_error, run_cli
from support.records import read_result

from prunebench.core.device import Worker
from prunebench.harness.lifecycle import execute_run
from prunebench.harness.tracking import start_tracking, wandb_mode
from prunebench.harness.validation import validate_run_config

pytestmark = pytest.mark.slow  # whole runs mirrored to W&B offline: not in `make test-fast`

FAKE_KEY = "fake-secret-0123456789"
SMOKE_GLOBAL = REPO / "configs" / "smoke" / "global.yaml"  # it names no `wandb`: the default, auto, applies
TINY = ("--set", "threads=1", "--set", "model.name=lenet_300_100", "--set", "data.layout=flat",
        "--set", "phases={dense: 1, prune: 1, finetune: 1}", "--set", "latency={batch_sizes: [1, 8], seconds: 0.2}")  # fmt: skip


def tiny_config(tmp_path: Path, wandb: str) -> object:
    return validate_run_config(tiny_fields(tmp_path, wandb))


def tiny_fields(tmp_path: Path, wandb: str) -> dict:
    return {
        "experiment": "wb",
        "model": {"name": "lenet_300_100"},
        "data": {"name": "digits", "layout": "flat", "batch_size": 64},
        "method": {"name": "global", "hparams": {"schedule": "one_shot"}},
        "phases": {"dense": 1, "prune": 1},
        "target_compression": 2.0,
        "output_dir": str(tmp_path / "runs"),
        "wandb": wandb,
        "latency": {"enabled": False},
    }  # fmt: skip


def inspect(run_dir: Path, *options: str) -> str:
    """What the offline run under `run_dir` holds, read without a server (W&B's public API cannot
    read offline runs)."""
    (log,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    wandb_cli = Path(sys.executable).parent / "wandb"
    return subprocess.run([str(wandb_cli), "leet", "inspect", "--json", *options, str(log)], capture_output=True, text=True, check=True).stdout


def offline_summary(run_dir: Path) -> dict:
    return json.loads(inspect(run_dir, "--summary"))


def offline_history(run_dir: Path) -> list[dict]:
    """The offline run's history rows, as logged."""
    records = [json.loads(line) for line in inspect(run_dir).splitlines() if line.strip()]
    return [record for record in records if record.get("type") == "history"]


@pytest.mark.parametrize(("env", "mode"), [
    ({}, None),  # auto without a key: off
    ({"WANDB_API_KEY": FAKE_KEY}, "online"),
    ({"WANDB_MODE": "offline"}, "offline"),
    ({"WANDB_MODE": "offline", "WANDB_API_KEY": FAKE_KEY}, "offline"),  # the environment wins over the key
    ({"WANDB_MODE": "disabled", "WANDB_API_KEY": FAKE_KEY}, None),
    ({"WANDB_MODE": "dryrun"}, "offline"),  # W&B's older name
])  # fmt: skip
def test_auto_follows_the_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], mode: str | None) -> None:
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert wandb_mode("auto") == mode


def test_a_setting_the_config_names_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("disabled") is None and wandb_mode("online") == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("offline") == "offline"


def test_an_unknown_wandb_mode_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli("run", str(SMOKE_GLOBAL), "--storage-path", str(tmp_path / "runs"), *TINY, env={"WANDB_MODE": "sometimes"})
    assert_one_line_error(result, "WANDB_MODE: expected", "'sometimes'")
    assert not (tmp_path / "runs").exists()


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


def test_wandb_mode_offline_makes_an_offline_run_and_says_where(tmp_path: Path) -> None:
    """`WANDB_MODE=offline prunebench run CONFIG` on a config that names no `wandb`: an offline run in
    the run directory, one line naming it and the command that uploads it; the W&B config holds the
    method's resolved hyper-parameters, the history each epoch's phase, the summary latency and speedup."""
    result = run_cli("run", str(SMOKE_GLOBAL), "--storage-path", str(tmp_path / "runs"), *TINY, env={"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs" / "smoke").iterdir()
    (offline,) = run_dir.glob("wandb/offline-run-*")
    assert f"wandb: offline run in {offline}; upload it with: wandb sync {offline}" in result.stdout.splitlines()

    summary = offline_summary(run_dir)
    hparams = summary["config"]["method"]["hparams"]
    assert hparams["schedule"] == "gradual" and hparams["ramp_fraction"] == 0.75 and hparams["update_every"] == 10  # defaults filled
    latency = read_result(run_dir)["latency"]
    for batch in ("1", "8"):
        assert summary["summary"][f"speedup/b{batch}"] == pytest.approx(latency["speedup"][batch])
        assert summary["summary"][f"latency_ms/b{batch}"] == pytest.approx(latency["ms"][batch])
        assert summary["summary"][f"dense_latency_ms/b{batch}"] == pytest.approx(latency["dense_ms"][batch])
    assert "top1_change" not in summary["summary"], "a run without a dense stage has no dense reference of its own"
    assert [record["history"]["item"]["phase"] for record in offline_history(run_dir)] == ["dense", "prune", "finetune"]
    assert "wandb: offline run in" in (run_dir / "train.log").read_text()


def test_wandb_dir_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    config = tiny_config(tmp_path, "offline")
    execute_run(config)
    assert len(list((tmp_path / "elsewhere").glob("wandb/offline-run-*"))) == 1
    assert not (config.run_files().local_path() / "wandb").exists()


def test_summary_has_the_change_of_top1_against_the_runs_dense_stage(tmp_path: Path) -> None:
    dense = execute_run(validate_run_config({**tiny_fields(tmp_path, "disabled"), "method": {"name": "dense"}, "phases": {"dense": 1}}))
    stage = {"run_id": dense.run_id, "configuration": dense.configuration}
    fields = tiny_fields(tmp_path, "offline")
    config = validate_run_config({**fields, "model": {**fields["model"], "dense_stage": stage}})
    record = execute_run(config)
    summary = offline_summary(config.run_files().local_path())["summary"]
    assert summary["top1_change"] == pytest.approx(record.top1 - dense.top1)
    assert summary["dense_reference"] == dense.run_id
