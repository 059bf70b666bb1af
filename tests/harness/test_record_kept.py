"""After training starts, every outcome ends in exactly one result.json (issue: a finished
run's result never lost), and a plain `run` never retrains a finished run: it reports it, and
continues an unfinished one from its checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from support.cli import assert_one_line_error, run_main

from prunebench.harness import lifecycle, results
from prunebench.harness.checkpoints import KEYS
from prunebench.harness.lifecycle import execute_run, failed_record_of, record_failure
from prunebench.harness.validation import validate_run_config

RAW = {
    "experiment": "kept",
    "model": {"name": "lenet_300_100"},
    "data": {"name": "digits", "layout": "flat", "batch_size": 256},
    "method": {"name": "global", "hparams": {"schedule": "gradual"}},
    "phases": {"dense": 1, "prune": 1, "finetune": 1},
    "target_compression": 2.0,
    "latency": {"enabled": False},
    "threads": 1,
}


class Interrupt(KeyboardInterrupt):
    """A stopped job, as the run sees it."""


def tiny(tmp_path, **changes):
    return validate_run_config({**RAW, "output_dir": str(tmp_path / "out"), **changes})


def config_file(tmp_path, **changes) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**RAW, "output_dir": str(tmp_path / "out"), **changes}))
    return str(path)


def result_files(tmp_path) -> list:
    return sorted((tmp_path / "out").rglob("result.json"))


def only_record(tmp_path) -> dict:
    (path,) = result_files(tmp_path)
    return json.loads(path.read_text())


def test_latency_that_cannot_be_measured_removes_only_the_latency(tmp_path, monkeypatch):
    """A CPU allocation failure is a RuntimeError (not torch.OutOfMemoryError): the record stays."""

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(results, "measure_latency", no_memory)
    record = execute_run(tiny(tmp_path, latency={"batch_sizes": [65536]}))
    assert record.finished and record.latency is None
    assert only_record(tmp_path)["status"] == "finished"


def test_a_record_that_cannot_be_built_is_recorded_as_failed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OverflowError("a bug while building the record")

    monkeypatch.setattr(lifecycle, "finished_record", broken)
    record = execute_run(tiny(tmp_path))
    assert record.status == "failed" and record.error.startswith("OverflowError: a bug while building the record")
    assert only_record(tmp_path)["status"] == "failed" and len(record.trail) == 3


def test_a_model_that_cannot_be_written_fails_the_run_and_keeps_the_record(tmp_path, monkeypatch):
    write_torch = lifecycle.RunDir.write_torch

    def full_disk(self, name, payload):
        if name == "model.pt":
            raise OSError(28, "No space left on device")
        write_torch(self, name, payload)

    monkeypatch.setattr(lifecycle.RunDir, "write_torch", full_disk)
    record = execute_run(tiny(tmp_path))
    assert record.status == "failed" and "cannot write model.pt" in record.error
    assert only_record(tmp_path)["status"] == "failed"


def test_result_json_that_is_a_directory_is_refused_before_training(tmp_path):
    config = tiny(tmp_path)
    (config.run_files().local_path() / "result.json").mkdir(parents=True)
    result = run_main("run", config_file(tmp_path))
    assert_one_line_error(result, "result.json: exists and is not a file")
    assert sorted(p.name for p in config.run_files().local_path().iterdir()) == ["result.json"]  # nothing trained or written


def wrong_values_checkpoint(config) -> None:
    """Every key of the format, every value of the wrong type (the elapsed time a string)."""
    state = {key: "x" for key in KEYS}
    config.run_files().local_path().mkdir(parents=True)
    torch.save(state, config.run_files().local_path() / "checkpoint.pt")


def test_a_checkpoint_of_wrong_values_is_refused_before_anything_is_written(tmp_path):
    config = tiny(tmp_path)
    wrong_values_checkpoint(config)
    result = run_main("run", config_file(tmp_path))
    assert_one_line_error(result, "checkpoint.pt: not a checkpoint of this run (epoch: expected an integer")
    assert sorted(p.name for p in config.run_files().local_path().iterdir()) == ["checkpoint.pt"]


def test_the_failed_record_writer_survives_a_checkpoint_of_wrong_values(tmp_path):
    """Ray gave up on the run and its checkpoint is garbage: still exactly one failed record."""
    config = tiny(tmp_path)
    wrong_values_checkpoint(config)
    record = record_failure(config.run_files(), config, "Ray Train gave up on the run")
    assert record.status == "failed" and record.trail == [] and only_record(tmp_path)["status"] == "failed"


def test_the_failed_record_writer_survives_a_trail_the_schema_refuses(tmp_path):
    record = failed_record_of(tiny(tmp_path), "diverged", [{"epoch": -1, "phase": "dense"}], float("nan"))
    assert record.status == "failed" and record.trail == [] and "its trail was left out" in record.error


def test_run_twice_on_the_same_config_trains_once(tmp_path):
    path = config_file(tmp_path)
    first = run_main("run", path, timeout=600)
    assert first.returncode == 0, first.stderr
    (result,) = result_files(tmp_path)
    written = result.read_bytes()
    again = run_main("run", path, timeout=600)
    assert again.returncode == 0 and "already finished" in again.stdout and "--force" in again.stdout
    assert "epoch" not in again.stderr and result.read_bytes() == written, "a finished run was trained again"
    forced = run_main("run", path, "--force", timeout=600)
    assert forced.returncode == 0 and "epoch   1/3" in forced.stderr and result_files(tmp_path) == [result]


def test_a_crashed_run_continues_on_a_plain_run_and_restart_starts_over(tmp_path):
    def stop_after_first(entry):
        if entry["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        execute_run(tiny(tmp_path), callbacks=[stop_after_first])
    assert result_files(tmp_path) == []
    resumed = run_main("run", config_file(tmp_path), timeout=600)
    assert resumed.returncode == 0 and "resumed from epoch 1" in resumed.stderr, resumed.stderr
    assert "epoch   1/3" not in resumed.stderr and [e["epoch"] for e in only_record(tmp_path)["trail"]] == [1, 2, 3]

    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(Interrupt):
        execute_run(tiny(again), callbacks=[stop_after_first])
    restarted = run_main("run", config_file(again), "--restart", timeout=600)
    assert restarted.returncode == 0 and "resumed" not in restarted.stderr and "epoch   1/3" in restarted.stderr
