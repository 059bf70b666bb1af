"""A method's settings are chosen on validation, never on test, and reported by their test top-1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.records import make_record, write_runs

from prunebench.leaderboard import build_leaderboard, render_leaderboard


def ending_at(val_top1: float, epochs: int = 10) -> list[dict]:
    """A trail whose last epoch validated at `val_top1`."""
    return [{"epoch": e, "phase": "finetune", "val_top1": val_top1 * e / epochs} for e in range(1, epochs + 1)]


def settings(tmp_path: Path) -> Path:
    """ltp at two settings: lambda0 1e-6 tests better (0.91 vs 0.89) but validates worse (0.86 vs 0.88 over two seeds)."""
    records = [make_record("dense", seed=0, top1=0.92, density=1.0)]
    records += [make_record("ltp", seed=s, top1=0.91, density=0.25, hparams={"lambda0": 1e-6}, trail=ending_at(val)) for s, val in enumerate((0.85, 0.87))]
    records += [make_record("ltp", seed=s, top1=0.89, density=0.25, hparams={"lambda0": 1e-5}, trail=ending_at(val)) for s, val in enumerate((0.87, 0.89))]
    records += [make_record("global", seed=0, top1=0.80, density=0.2)]  # one setting: nothing to choose
    return write_runs(tmp_path, records)


def test_the_validation_best_setting_is_chosen_when_test_disagrees(tmp_path: Path) -> None:
    results = settings(tmp_path)
    (track,) = build_leaderboard(results).tracks
    rows = track.rows.to_dict("records")
    chosen = [row for row in rows if row["chosen"]]
    assert [(row["method"], row["hparams"]["lambda0"]) for row in chosen] == [("ltp", 1e-5)]
    assert chosen[0]["val_top1"] == pytest.approx(0.88) and chosen[0]["top1"] == pytest.approx(0.89)  # chosen on validation, reported by test
    assert not any(row["chosen"] for row in rows if row["method"] in ("global", "dense"))
    document = json.loads(render_leaderboard(results, fmt="json"))
    assert [(r["method"], r["hparams"]["lambda0"]) for r in document["tracks"][0]["rows"] if r["chosen"]] == [("ltp", 1e-5)]
    for fmt in ("table", "markdown", "html"):
        assert "✓" in render_leaderboard(results, fmt=fmt), fmt


def test_without_a_validation_top1_nothing_is_chosen(tmp_path: Path) -> None:
    records = [make_record("ltp", seed=0, top1=top1, hparams={"lambda0": lam}, trail=[]) for top1, lam in ((0.9, 1e-6), (0.8, 1e-5))]
    (track,) = build_leaderboard(write_runs(tmp_path, records)).tracks
    assert not track.rows["chosen"].any()
