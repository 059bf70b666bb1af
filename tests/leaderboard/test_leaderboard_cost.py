"""A row's cost: total training epochs (the shared dense stage counted) and device-seconds, in
every view and as sort keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.records import make_record, write_runs

from prunebench.leaderboard import build_leaderboard, render_leaderboard
from prunebench.leaderboard.cost import devices


def from_stage(stage: dict, **fields) -> dict:
    """A global run that starts from `stage`'s model: its phases name the stage's dense epochs."""
    config = {"seed": fields.get("seed", 0), "method": {"name": "global"}, "model": {"name": "resnet20", "dense_stage":
              {"run_id": stage["run_id"], "configuration": "stage"}}, "phases": {"dense": {"epochs": stage["epochs"]}}}  # fmt: skip
    return make_record("global", epochs=stage["epochs"] + 4, phases={"dense": stage["epochs"], "prune": 2, "finetune": 2},
                       config=config, **fields)  # fmt: skip


def test_devices_are_one_a_worker() -> None:
    assert devices({"world_size": 8}) == 8 and devices({}) == 1  # a record without a world size: one


def board(tmp_path: Path) -> Path:
    stage = make_record("dense", seed=0, top1=0.92, density=1.0, epochs=6, wall_seconds=100.0,
                        environment={"world_size": 2})  # fmt: skip
    staged = from_stage(stage, top1=0.90, density=0.2, wall_seconds=30.0, environment={"world_size": 2})
    alone = make_record("ltp", top1=0.88, density=0.25, epochs=5, wall_seconds=40.0, environment={"world_size": 1})
    return write_runs(tmp_path, [stage, staged, alone])


def test_a_run_from_a_shared_dense_stage_counts_the_stages_epochs_and_device_seconds(tmp_path: Path) -> None:
    (track,) = build_leaderboard(board(tmp_path)).tracks
    rows = {row["method"]: row for row in track.rows.to_dict("records")}
    assert rows["global"]["total_epochs"] == 6 + 4 and rows["global"]["device_seconds"] == 2 * 30 + 2 * 100
    assert rows["ltp"]["total_epochs"] == 5 and rows["ltp"]["device_seconds"] == 40
    assert rows["dense"]["total_epochs"] == 6 and rows["dense"]["device_seconds"] == 200


def test_without_the_stages_record_its_dense_epochs_still_count(tmp_path: Path) -> None:
    stage = make_record("dense", seed=0, epochs=6)  # not written: the store holds only the staged run
    (track,) = build_leaderboard(write_runs(tmp_path, [from_stage(stage, wall_seconds=30.0, environment={"world_size": 1})])).tracks
    (row,) = track.rows.to_dict("records")
    assert row["total_epochs"] == 10 and row["device_seconds"] == 30


def test_cost_is_in_every_view_and_sorts(tmp_path: Path) -> None:
    results = board(tmp_path)
    document = json.loads(render_leaderboard(results, fmt="json", sort="device_seconds"))
    measured = [r for r in document["tracks"][0]["rows"] if r["kind"] == "measured"]
    assert [r["device_seconds"] for r in measured] == [40, 200, 260] and [r["total_epochs"] for r in measured] == [5, 6, 10]
    assert [r["method"] for r in json.loads(render_leaderboard(results, fmt="json", sort="total_epochs"))["tracks"][0]["rows"]] == [
        "ltp", "dense", "global"]  # fmt: skip
    for fmt in ("table", "markdown", "html"):
        text = render_leaderboard(results, fmt=fmt, wide=True) if fmt == "table" else render_leaderboard(results, fmt=fmt)
        assert "total epochs" in text and "device-s" in text and "260" in text, fmt
    assert "260" in render_leaderboard(results, fmt="csv")


@pytest.mark.parametrize("width", ["80", "120", "200"])
def test_the_compact_table_still_fits_with_the_cost_columns(tmp_path: Path, width: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", width)
    text = render_leaderboard(board(tmp_path), fmt="table")
    assert max(len(line) for line in text.splitlines()) <= int(width)
    if width == "200":
        assert "device-s" in text
