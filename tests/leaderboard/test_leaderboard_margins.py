"""Margins over the baselines: random pruning at the same operating point, and a structured row's
own architecture trained from scratch; nothing (not 0) where the baseline is missing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support.records import make_record, write_runs

from prunebench.leaderboard import build_leaderboard, render_leaderboard


def unstructured(tmp_path: Path, with_random: bool = True) -> Path:
    """ltp at 5x (top-1 0.86) and at 4x (0.88); random at 2x (0.85), 5x (0.80) and 10x (0.75)."""
    records = [make_record("dense", top1=0.92, density=1.0)]
    records += [make_record("ltp", top1=0.86, density=0.2, hparams={"lambda0": 1e-5}), make_record("ltp", top1=0.88, density=0.25)]
    if with_random:
        records += [make_record("random", top1=top1, density=density, target_compression=1 / density) for top1, density in ((0.85, 0.5), (0.80, 0.2), (0.75, 0.1))]
    return write_runs(tmp_path, records)


def rows_by_density(results: Path) -> dict[float, dict]:
    (track,) = build_leaderboard(results).tracks
    return {(row["method"], row["density"]): row for row in track.rows.to_dict("records")}


def test_a_method_above_random_shows_its_margin_at_the_same_compression(tmp_path: Path) -> None:
    rows = rows_by_density(unstructured(tmp_path))
    assert rows[("ltp", 0.2)]["vs_random"] == pytest.approx(0.86 - 0.80)  # random measured at 5x
    w = math.log(4 / 2) / math.log(5 / 2)  # 4x lies between random's 2x and 5x: log-linear, as the matched points
    assert rows[("ltp", 0.25)]["vs_random"] == pytest.approx(0.88 - ((1 - w) * 0.85 + w * 0.80))
    assert all(math.isnan(rows[key]["vs_random"]) for key in rows if key[0] in ("random", "dense"))  # the baseline and dense: none


def test_the_margin_is_in_every_view(tmp_path: Path) -> None:
    results = unstructured(tmp_path)
    document = json.loads(render_leaderboard(results, fmt="json"))
    ltp = next(r for r in document["tracks"][0]["rows"] if r["method"] == "ltp" and r["density"] == 0.2)
    assert ltp["vs_random"] == pytest.approx(0.06)
    assert "vs random" in render_leaderboard(results, fmt="table") and "+6.00" in render_leaderboard(results, fmt="table")
    for fmt in ("markdown", "html", "csv"):
        assert "+6.00" in render_leaderboard(results, fmt=fmt) or "0.06" in render_leaderboard(results, fmt=fmt), fmt


def test_a_track_without_random_shows_nothing_not_zero(tmp_path: Path) -> None:
    results = unstructured(tmp_path, with_random=False)
    rows = rows_by_density(results)
    assert all(math.isnan(row["vs_random"]) for row in rows.values())
    document = json.loads(render_leaderboard(results, fmt="json"))
    assert all(r["vs_random"] is None for r in document["tracks"][0]["rows"])
    assert "vs random" not in render_leaderboard(results, fmt="table")  # the compact table leaves an empty column out
    lines = [line.split(" | ") for line in render_leaderboard(results, fmt="markdown").splitlines() if line.startswith("| ")]
    column = lines[0].index("vs random")
    rows = [cells for cells in lines[1:] if len(cells) == len(lines[0])]  # the track's table, not the matched points'
    assert len(rows) == 3 and all(cells[column] == "" for cells in rows)  # blank cells, not +0.00


def test_outside_randoms_sweep_there_is_no_margin(tmp_path: Path) -> None:
    records = [make_record("ltp", top1=0.8, density=0.02), make_record("random", top1=0.7, density=0.5, target_compression=2.0),
               make_record("random", top1=0.6, density=0.1, target_compression=10.0)]
    rows = rows_by_density(write_runs(tmp_path, records))
    assert math.isnan(rows[("ltp", 0.02)]["vs_random"])  # 50x is beyond random's 2x-10x: never extrapolated


def test_a_structured_row_shows_its_margin_over_its_architecture_from_scratch(tmp_path: Path) -> None:
    ns = make_record("ns", top1=0.87, density=0.5)
    scratch = make_record("dense", top1=0.84, density=0.5, granularity="structured", config={"model": {"name": "resnet20", "from_architecture": ns["run_id"]}})
    other = make_record("ns", top1=0.80, density=0.25, hparams={"lam": 1e-3})  # no from-scratch run of its architecture
    randoms = [make_record("random_channels", top1=0.82, density=0.5, granularity="structured")]
    (track,) = build_leaderboard(write_runs(tmp_path, [ns, scratch, other, *randoms])).tracks
    rows = {(row["method"], row["density"]): row for row in track.rows.to_dict("records")}
    assert rows[("ns", 0.5)]["vs_scratch"] == pytest.approx(0.87 - 0.84) and rows[("ns", 0.5)]["vs_random"] == pytest.approx(0.87 - 0.82)
    assert math.isnan(rows[("ns", 0.25)]["vs_scratch"])
    assert math.isnan(rows[("dense", 0.5)]["vs_scratch"]) and math.isnan(rows[("dense", 0.5)]["vs_random"])  # the baseline itself
    page = render_leaderboard(tmp_path, fmt="html")
    assert "vs scratch" in page and "+3.00" in page
