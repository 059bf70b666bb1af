"""Interrupted runs continue from their last epoch checkpoint, in every phase."""

import pytest

from harness.config import validate_run_config
from harness.runner import LocalCheckpoints, run_local
from leaderboard.board import build_leaderboard


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
        "output_dir": str(tmp_path),
    }
    raw.update(changes)
    return raw


def stop_after(epoch: int):
    def callback(entry: dict) -> None:
        if entry["epoch"] == epoch:
            raise Interrupt

    return callback


@pytest.mark.parametrize("interrupt_at", [1, 3, 5])
def test_resume_continues_from_the_last_epoch(tmp_path, interrupt_at):
    config = validate_run_config(tiny_config(tmp_path))
    with pytest.raises(Interrupt):
        run_local(config, callbacks=[stop_after(interrupt_at)])
    saved = LocalCheckpoints(config.run_dir()).load()
    assert saved["epoch"] == interrupt_at
    before = saved["trail"]

    seen: list[int] = []
    record, _ = run_local(config, resume=True, callbacks=[lambda entry: seen.append(entry["epoch"])])
    assert seen == list(range(interrupt_at + 1, 7))  # nothing redone
    assert [e["epoch"] for e in record["trail"]] == list(range(1, 7))
    assert record["trail"][:interrupt_at] == before
    assert record["compression_rate"] == pytest.approx(4.0, rel=0.01)
    assert not (config.run_dir() / "checkpoint.pt").exists()  # cleared once the result is written


def test_diverged_run_is_recorded_as_failed_and_never_ranked(tmp_path):
    config = validate_run_config(tiny_config(tmp_path, optimizer={"lr": 1.0e6, "momentum": 0.9}))
    record, run_dir = run_local(config)
    assert record["status"] == "failed" and "diverged in epoch 1" in record["error"]
    assert record["top1"] is None and (run_dir / "result.json").is_file()
    run_local(validate_run_config(tiny_config(tmp_path, method={"name": "dense"}, phases={"dense": 1})))

    board = build_leaderboard(tmp_path)
    assert list(board.failed["run_id"]) == [record["run_id"]]
    assert "diverged in epoch 1" in board.failed["error"][0]
    ranked = {run for track in board.tracks for ids in track.rows["run_ids"].dropna() for run in ids}
    assert any(run.startswith("dense-") for run in ranked) and record["run_id"] not in ranked


def test_structured_run_resumes_in_finetune_with_the_same_pruned_architecture(tmp_path):
    """Resuming after channels were removed rebuilds the smaller model from the pre-finalize weights."""
    config = validate_run_config(tiny_config(
        tmp_path, model={"name": "resnet20"}, data={"name": "digits", "batch_size": 128},
        method={"name": "ns", "hparams": {"lam": 1.0e-2, "prune_ratio": 0.3}}, phases={"prune": 1, "finetune": 2},
    ))  # fmt: skip
    with pytest.raises(Interrupt):
        run_local(config, callbacks=[stop_after(2)])
    before = LocalCheckpoints(config.run_dir()).load()
    record, _ = run_local(config, resume=True)
    assert [e["epoch"] for e in record["trail"]] == [1, 2, 3]
    assert record["trail"][:2] == before["trail"]
    assert record["macs"] == before["trail"][-1]["macs"] < record["macs_dense"]
