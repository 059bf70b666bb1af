"""Seed intervals: mean ± half the 95 % t-interval with n in every view, and a Pareto front
that does not separate rows whose intervals overlap."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy.stats import t
from support.records import make_record, write_runs

from prunebench.leaderboard import build_leaderboard, render_leaderboard
from prunebench.leaderboard.ranking import pareto_front


def half(values: list[float]) -> float:
    n, mean = len(values), sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return t.ppf(0.975, n - 1) * std / math.sqrt(n)


def test_rows_within_each_others_interval_both_stay_on_the_front():
    # b is more compressed and 1 point better, but the intervals (0.8 + 0.4) cover the gap
    assert pareto_front([0.90, 0.91], [4.0, 8.0], [0.008, 0.004]) == [True, True]
    # without intervals the same b dominates a
    assert pareto_front([0.90, 0.91], [4.0, 8.0]) == [False, True]


def test_a_row_beaten_clearly_on_both_axes_is_off_the_front():
    assert pareto_front([0.90, 0.95], [4.0, 8.0], [0.008, 0.004]) == [False, True]
    # better in top-1 by more than the intervals, but less compressed: both stay
    assert pareto_front([0.90, 0.95], [8.0, 4.0], [0.008, 0.004]) == [True, True]


def test_without_intervals_an_equal_top1_at_more_compression_dominates():
    # one seed each (no interval): the plain Pareto rule, so the less compressed tie is off
    assert pareto_front([0.90, 0.90], [3.0, 4.0]) == [False, True]
    assert pareto_front([0.90, 0.90], [4.0, 4.0]) == [True, True]  # the same point: neither beats the other


def spread(tmp_path: Path) -> Path:
    """ltp at 4x over three seeds; global at 5x over two seeds, better on average but inside ltp's interval;
    snip at 2x clearly worse than both."""
    records = [make_record("dense", seed=s, top1=0.92, density=1.0) for s in range(2)]
    records += [make_record("ltp", seed=s, top1=top1, density=0.25) for s, top1 in enumerate((0.86, 0.90, 0.88))]
    records += [make_record("global", seed=s, top1=top1, density=0.2) for s, top1 in enumerate((0.885, 0.895))]
    records += [make_record("snip", seed=s, top1=top1, density=0.5) for s, top1 in enumerate((0.70, 0.71))]
    return write_runs(tmp_path, records)


def test_the_board_shows_each_row_with_its_interval_and_n_in_every_view(tmp_path: Path) -> None:
    results = spread(tmp_path)
    (track,) = build_leaderboard(results).tracks
    rows = {row["method"]: row for row in track.rows.to_dict("records")}
    assert rows["ltp"]["top1_ci95"] == pytest.approx(half([0.86, 0.90, 0.88]))
    assert rows["ltp"]["pareto"] and rows["global"]["pareto"] and not rows["snip"]["pareto"]
    ltp = f"88.00 ± {100 * half([0.86, 0.90, 0.88]):.2f} (n 3)"
    assert ltp in render_leaderboard(results, fmt="table") and ltp in render_leaderboard(results, fmt="markdown")
    document = json.loads(render_leaderboard(results, fmt="json"))
    (ltp_row,) = [r for r in document["tracks"][0]["rows"] if r["method"] == "ltp"]
    assert ltp_row["top1_ci95"] == pytest.approx(half([0.86, 0.90, 0.88])) and ltp_row["top1_n"] == 3
    page = render_leaderboard(results, fmt="html")
    scatter = page.partition("top-1 against compression")[2].split("</svg>")[0]
    assert scatter.count('class="error-bar"') == 3  # ltp, global, snip; dense's two seeds agree: no bar
    assert f"top-1 88.00 ± {100 * half([0.86, 0.90, 0.88]):.2f} % (95 % t, n 3)" in scatter


def test_one_seed_has_no_interval_and_no_error_bar(tmp_path: Path) -> None:
    results = write_runs(tmp_path, [make_record("ltp", seed=0, top1=0.9)])
    (track,) = build_leaderboard(results).tracks
    assert math.isnan(track.rows.iloc[0]["top1_ci95"])
    assert "90.00 (n 1)" in render_leaderboard(results, fmt="table")
    assert 'class="error-bar"' not in render_leaderboard(results, fmt="html")
