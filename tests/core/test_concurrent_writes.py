"""Several runs finishing at once into one storage path: every result complete and parseable,
and a reader running during the writes never sees a half-written file; a write that breaks
leaves the old file or nothing."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
from support.records import write_result

from prunebench.core.record import REQUIRED_KEYS
from prunebench.leaderboard.store import load_runs

WRITERS, WRITES_EACH = 4, 25


def record(run_id: str, version: int) -> dict:
    base = {key: None for key in REQUIRED_KEYS}
    trail = [{"epoch": e, "phase": "prune", "density": 0.5, "compression": 2.0, "val_top1": 0.9, "macs": 10**6} for e in range(800)]
    base.update(run_id=run_id, experiment="race", config_hash=run_id[-4:], method="global", model="resnet20", dataset="digits",
                seed=0, hparams={"version": version}, status="finished", epochs=800, top1=0.9, top5=0.99,
                prunable_params=1000, prunable_nonzero=500, density=0.5, compression_rate=2.0, macs=10**6,
                macs_dense=2 * 10**6, flops=2 * 10**6, trail=trail, wall_seconds=1.0, environment={})  # fmt: skip
    return base


def writer(storage: str, index: int) -> None:
    """Rewrites its own result and a result shared by all writers, over and over."""
    for version in range(WRITES_EACH):
        write_result(Path(storage) / "race" / f"run-{index:04d}", record(f"run-{index:04d}", version))
        write_result(Path(storage) / "race" / "shared", record("shared-0000", version))


def test_concurrent_writers_and_a_reader_never_see_partial_files(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=writer, args=(str(tmp_path), i)) for i in range(WRITERS)]
    for process in processes:
        process.start()
    reads = 0
    while any(p.is_alive() for p in processes):
        for path in tmp_path.rglob("result.json"):
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            json.loads(text)  # raises on a torn or half-written file
            reads += 1
        time.sleep(0.001)
    for process in processes:
        process.join()
        assert process.exitcode == 0
    assert reads > 0
    results = sorted(tmp_path.rglob("result.json"))
    assert len(results) == WRITERS + 1
    for path in results:
        data = json.loads(path.read_text())
        assert set(REQUIRED_KEYS) <= set(data) and data["hparams"]["version"] == WRITES_EACH - 1
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")], "temporary files left behind"
    frame, problems = load_runs(tmp_path)
    assert problems == [] and len(frame) == WRITERS + 1


def test_a_write_that_breaks_leaves_the_old_file_or_nothing(tmp_path):
    """Checkpoints stream into their file (never whole into memory); a write that fails half way
    leaves what was there before, in a directory and under a URI alike."""
    import torch

    from prunebench.core.storage import Storage

    class Broken(Exception):
        pass

    def half_then_break(stream):
        stream.write(b"half")
        raise Broken

    for root in (str(tmp_path / "dir"), f"file://{tmp_path}/uri"):
        run = Storage(root).run("exp", "run-1")
        payload = {"weights": torch.arange(1000.0), "epoch": 3}
        run.write_torch("checkpoint.pt", payload)
        loaded = run.load_torch("checkpoint.pt")
        assert loaded["epoch"] == 3 and torch.equal(loaded["weights"], payload["weights"]), root
        with pytest.raises(Broken):
            run.storage.write_with("exp/run-1/checkpoint.pt", half_then_break)
        assert torch.equal(run.load_torch("checkpoint.pt")["weights"], payload["weights"]), root
        with pytest.raises(Broken):
            run.storage.write_with("exp/run-1/model.pt", half_then_break)
        assert not run.exists("model.pt"), root
        assert sorted(Path(p).name for p in run.storage.files()) == ["checkpoint.pt"], root
