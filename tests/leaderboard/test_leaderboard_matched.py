"""Matched operating points: each method's top-1 at 2, 4, 8, 16, 32x, only inside its sweep, in every view."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy.stats import t
from support.cli import run_main
from support.records import make_record, write_runs

from prunebench.leaderboard import build_leaderboard, render_leaderboard


def sweep(tmp_path: Path) -> Path:
    """ltp at 2.5x and 10x (3 seeds each), global at 4x exactly (2 seeds), dense."""
    records = [make_record("dense", seed=s, top1=0.92, density=1.0) for s in range(2)]
    records += [make_record("ltp", seed=s, top1=top1, density=0.4, hparams={"lambda0": 1e-6}) for s, top1 in enumerate((0.90, 0.91, 0.92))]
    records += [make_record("ltp", seed=s, top1=top1, density=0.1, hparams={"lambda0": 1e-5}) for s, top1 in enumerate((0.84, 0.85, 0.86))]
    records += [make_record("global", seed=s, top1=top1, density=0.25) for s, top1 in enumerate((0.87, 0.88))]
    return write_runs(tmp_path, records)


def test_each_method_is_read_at_the_ratios_its_sweep_brackets(tmp_path: Path) -> None:
    (track,) = build_leaderboard(sweep(tmp_path)).tracks
    table = {(entry["method"], entry["ratio"]): entry for entry in track.matched}
    assert set(table) == {("ltp", 4.0), ("ltp", 8.0), ("global", 4.0)}  # ltp's 2.5x-10x holds 4x and 8x; global only its own 4x
    w = math.log(4 / 2.5) / math.log(4)
    ltp = table[("ltp", 4.0)]
    assert ltp["interpolated"] and ltp["top1"] == pytest.approx((1 - w) * 0.91 + w * 0.85) and ltp["n"] == 3
    se = math.sqrt(((1 - w) * 0.01 / math.sqrt(3)) ** 2 + (w * 0.01 / math.sqrt(3)) ** 2)
    assert ltp["ci95"] == pytest.approx(t.ppf(0.975, 2) * se)
    exact = table[("global", 4.0)]
    assert not exact["interpolated"] and exact["top1"] == pytest.approx(0.875)
    assert exact["ci95"] == pytest.approx(t.ppf(0.975, 1) * (0.01 / math.sqrt(2)) / math.sqrt(2))  # std 0.707 points, n 2


def test_every_view_carries_the_matched_points(tmp_path: Path) -> None:
    results = sweep(tmp_path)
    document = json.loads(render_leaderboard(results, fmt="json"))
    assert {(e["method"], e["ratio"]) for e in document["tracks"][0]["matched"]} == {("ltp", 4.0), ("ltp", 8.0), ("global", 4.0)}
    markdown = render_leaderboard(results, fmt="markdown")
    assert "### Matched operating points" in markdown and "| method | compression 4× | compression 8× |" in markdown
    page = render_leaderboard(results, fmt="html")
    assert "Matched operating points" in page and page.count('class="error-bar"') >= 3  # ltp's two settings and global's
    assert "(95 % t, n 3)" in page  # the tooltip says the interval and n
    plain = render_leaderboard(results, fmt="table")
    assert "compression 4×" not in plain
    result = run_main("leaderboard", str(results), "--matched")
    assert result.returncode == 0, result.stderr
    assert "compression 4×" in result.stdout and "~88." in result.stdout  # ltp at 4x, interpolated
