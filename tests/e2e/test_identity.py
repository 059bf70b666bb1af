"""A run's identity is what it computed: a real shared-dense grid over three seeds shows each
method as one row, and a copied result store is still finished in its new place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from prunebench.cluster.plan import FINISHED, plan_grid
from prunebench.harness.lifecycle import execute_run
from prunebench.leaderboard.board import build_leaderboard

pytestmark = pytest.mark.slow  # trains a six-run grid: not in `make test-fast`

GRID = {
    "experiment": "seeds",
    "shared_dense": True,
    "base": {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64}, "threads": 1},
    "axes": {"method": {"dense": {"phases": {"dense": 1}},
                        "global": {"phases": {"dense": 1, "prune": 1, "finetune": 1}, "target_compression": 2.0}},
             "seed": [0, 1, 2]},
}  # fmt: skip


@pytest.fixture(scope="module")
def finished_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every run of the grid's plan through the run lifecycle, dense stages first (as `submit` orders them)."""
    directory = tmp_path_factory.mktemp("identity")
    path = directory / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, "storage_path": str(directory / "store")}))
    plan = plan_grid(str(path), [])
    for run in sorted(plan.runs, key=lambda run: run.stage is not None):
        assert execute_run(run.config).finished
    return path, directory


def test_seeds_of_a_shared_dense_grid_merge_into_one_row(finished_grid: tuple[Path, Path]) -> None:
    _, directory = finished_grid
    board = build_leaderboard(directory / "store")
    rows = {row["method"]: row for track in board.tracks for _, row in track.rows.iterrows() if row["kind"] == "measured"}
    assert rows["global"]["n"] == 3 and sorted(rows["global"]["seeds"]) == [0, 1, 2]
    assert rows["dense"]["n"] == 3


def test_a_copied_store_is_still_finished(finished_grid: tuple[Path, Path]) -> None:
    path, directory = finished_grid
    shutil.copytree(directory / "store", directory / "moved")
    moved = plan_grid(str(path), [f"storage_path={directory / 'moved'}"])
    assert [moved.state(run.config.run_id()) for run in moved.runs] == [FINISHED] * 6
