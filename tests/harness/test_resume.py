"""Interrupted runs continue from their last epoch checkpoint, in every phase, and end exactly
where the uninterrupted run ends: the same trail, the same test top-1, the same model."""

import pytest
import yaml

from prunebench.harness.checkpoints import Checkpoints
from prunebench.harness.lifecycle import execute_run
from prunebench.harness.validation import validate_run_config
from prunebench.leaderboard.board import build_leaderboard

pytestmark = pytest.mark.slow  # trains and interrupts whole runs: not in `make test-fast`


class Interrupt(KeyboardInterrupt):
    """What Ctrl-C or a stopped job looks like to the run."""


def tiny_config(tmp_path, **changes) -> dict:
    raw = {
        "experiment": "resume",
        "model": {"name": "lenet_300_100"},
        "data": {"name": "digits", "layout": "flat", "batch_size": 64},
        "method": {"name": "global", "hparams": {"schedule": "gradual", "update_every": 2}},
        "phases": {"dense": 2, "prune": 2, "finetune": 2},
        "optimizer": {"lr": 0.05},
        "target_compression": 4.0,
        "threads": 1,
        "output_dir": str(tmp_path),
    }
    raw.update(changes)
    return raw


def stop_after(epoch: int):
    def callback(entry: dict) -> None:
        if entry["epoch"] == epoch:
            raise Interrupt

    return callback


def computed(record) -> dict:
    """Everything a record says about what was computed: not timings, not where it ran."""
    data = record.model_dump()
    data["trail"] = [{k: v for k, v in entry.items() if k != "seconds"} for entry in data["trail"]]
    return {k: v for k, v in data.items() if k not in ("wall_seconds", "latency", "environment")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny run trained once without a stop, in its own storage."""
    tmp_path = tmp_path_factory.mktemp("straight")
    return computed(execute_run(validate_run_config(tiny_config(tmp_path))))


@pytest.mark.parametrize("interrupt_at", [1, 2, 3, 4, 5])  # dense, dense end, prune, prune end, finetune
def test_resume_continues_from_the_last_epoch_and_ends_like_the_uninterrupted_run(tmp_path, interrupt_at, uninterrupted):
    config = validate_run_config(tiny_config(tmp_path))
    with pytest.raises(Interrupt):
        execute_run(config, callbacks=[stop_after(interrupt_at)])
    saved = Checkpoints(config.run_files()).load()
    assert saved.epoch == interrupt_at
    before = saved.trail

    seen: list[int] = []
    record = execute_run(config, resume=True, callbacks=[lambda entry: seen.append(entry["epoch"])])
    assert seen == list(range(interrupt_at + 1, 7))  # nothing redone
    assert [e.epoch for e in record.trail] == list(range(1, 7))
    assert [e.model_dump() for e in record.trail][:interrupt_at] == before
    assert record.compression_rate == pytest.approx(4.0, rel=0.01)
    assert not config.run_files().exists("checkpoint.pt")  # cleared once the result is written
    assert computed(record) == uninterrupted


def test_diverged_run_is_recorded_as_failed_and_never_ranked(tmp_path):
    config = validate_run_config(tiny_config(tmp_path, optimizer={"lr": 1.0e6, "momentum": 0.9}))
    record = execute_run(config).model_dump()
    assert record["status"] == "failed" and "diverged in epoch 1" in record["error"]
    assert record["top1"] is None and config.run_files().exists("result.json")
    execute_run(validate_run_config(tiny_config(tmp_path, method={"name": "dense"}, phases={"dense": 1})))

    board = build_leaderboard(tmp_path)
    assert list(board.failed["run_id"]) == [record["run_id"]]
    assert "diverged in epoch 1" in board.failed["error"][0]
    ranked = {run for track in board.tracks for ids in track.rows["run_ids"].dropna() for run in ids}
    assert any(run.startswith("dense-") for run in ranked) and record["run_id"] not in ranked


def test_a_crash_leaves_its_traceback_and_a_failed_record_with_trail_and_environment(tmp_path, monkeypatch):
    """A bug in the middle of a run (here: in the method's epoch hook) is recorded, not lost."""
    from prunebench.methods import global_magnitude as global_magnitude

    def broken(self, model, epoch, metrics):
        raise ZeroDivisionError("a bug in a method")

    monkeypatch.setattr(global_magnitude.GlobalMagnitude, "on_epoch_end", broken)
    config = validate_run_config(tiny_config(tmp_path))
    record = execute_run(config)
    assert record.status == "failed" and record.error.startswith("ZeroDivisionError: a bug in a method")
    assert [e.epoch for e in record.trail] == [1, 2], "the trail up to the crash is kept"
    assert record.environment["world_size"] == 1 and record.environment["torch"]
    log = config.run_files().read_bytes("error.log").decode()
    assert "Traceback" in log and "ZeroDivisionError: a bug in a method" in log


def test_structured_run_resumes_in_finetune_with_the_same_pruned_architecture(tmp_path):
    """Resuming after channels were removed rebuilds the smaller model from the pre-finalize weights."""
    raw = tiny_config(
        tmp_path, model={"name": "resnet20"}, data={"name": "digits", "batch_size": 128},
        method={"name": "ns", "hparams": {"lam": 1.0e-2, "prune_ratio": 0.3}}, phases={"prune": 1, "finetune": 2},
        max_steps_per_epoch=3,  # what is resumed is the finalize, not how long an epoch is
    )  # fmt: skip
    config = validate_run_config(raw)
    with pytest.raises(Interrupt):
        execute_run(config, callbacks=[stop_after(2)])
    before = Checkpoints(config.run_files()).load()
    record = execute_run(config, resume=True)
    assert [e.epoch for e in record.trail] == [1, 2, 3]
    assert [e.model_dump() for e in record.trail][:2] == before.trail
    assert record.macs == before.trail[-1]["macs"] < record.macs_dense
    straight = execute_run(validate_run_config({**raw, "output_dir": str(tmp_path / "straight")}))
    assert computed(record) == computed(straight)


def test_a_run_whose_result_is_not_finite_is_recorded_as_failed(tmp_path, monkeypatch):
    """A metric that cannot be written (NaN, out of range) fails the run with the reason; the
    record is never lost to the writer."""
    from prunebench.harness import lifecycle as lifecycle

    monkeypatch.setattr(lifecycle, "evaluate", lambda *args: {"loss": float("nan"), "top1": float("nan"), "top5": 1.0})
    config = validate_run_config(tiny_config(tmp_path, phases={"dense": 1}, method={"name": "dense"}))
    record = execute_run(config)
    assert record.status == "failed" and "invalid result: top1" in record.error and len(record.trail) == 1
    assert config.run_files().read_result()["status"] == "failed"


@pytest.mark.parametrize("method, hparams, finalizes", [
    ("ns", {"prune_ratio": 0.3}, 2),  # two snapshots; fine-tuning starts from the second
    ("ltp", {}, 3),  # its epoch hook changes its state after the snapshot: finalized again
])  # fmt: skip
def test_fine_tuning_starts_from_the_last_snapshot_when_nothing_changed_since(tmp_path, monkeypatch, method, hparams, finalizes):
    """The trail's snapshot after the last prune epoch is the method's finalize of a copy: the
    finetune phase takes it rather than finalizing the same state again (the result is the same:
    test_structured_run_resumes_in_finetune_with_the_same_pruned_architecture compares a run that
    does with one that finalizes anew after a restart)."""
    from prunebench import methods
    cls = type(methods.create(method))
    calls = []
    original = cls.finalize
    monkeypatch.setattr(cls, "finalize", lambda self, model: calls.append(1) or original(self, model))
    raw = tiny_config(tmp_path, model={"name": "resnet20"}, data={"name": "digits", "batch_size": 128},
                      method={"name": method, "hparams": hparams}, phases={"prune": 2, "finetune": 1}, max_steps_per_epoch=2)  # fmt: skip
    if method == "ltp":
        raw.pop("target_compression")
    record = execute_run(validate_run_config(raw))
    assert record.status == "finished" and len(calls) == finalizes


def test_prunebench_run_builds_the_method_once(tmp_path, monkeypatch):
    """Validation checks the hyper-parameters, the trainer builds the method, the record takes
    the validated hyper-parameters from the config: one method object per run."""
    from support.cli import run_main

    from prunebench.methods.base import PruningMethod

    built = []
    original = PruningMethod.__init__
    monkeypatch.setattr(PruningMethod, "__init__", lambda self, hparams: built.append(type(self).name) or original(self, hparams))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path, phases={"dense": 1, "prune": 1, "finetune": 1}, latency={"enabled": False})))
    result = run_main("run", str(config), "--out", str(tmp_path / "runs"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert built == ["global"]
