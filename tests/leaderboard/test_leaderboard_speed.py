"""Measured speed on the leaderboard: a speedup column beside the MACs reduction in every view,
with the device it was measured on, and never one order of speed across devices."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from support.records import make_record, write_runs

from prunebench.core.record import Latency
from prunebench.leaderboard import render_leaderboard
from prunebench.leaderboard.board import build_leaderboard
from prunebench.leaderboard.store import speed_fields

XEON, EPYC = "cpu Xeon Test", "cpu EPYC Test"


def timed(speedup: float, device: str = XEON, threads: int | None = 1, b1: float = 1.1) -> dict:
    """A record's `latency` with the given speedup at batch 64."""
    return {"device": device, "threads": threads, "clock": "wall clock", "batch_sizes": [1, 64],
            "ms": {"1": 1.0, "64": 10.0}, "dense_ms": {"1": b1, "64": 10.0 * speedup}, "speedup": {"1": b1, "64": speedup},
            "ms_iqr": {"1": [0.9, 1.1], "64": [9.0, 11.0]}, "dense_ms_iqr": {"1": [1.0, 1.2], "64": [9.0, 30.0]},
            "speedup_iqr": {"1": [1.0, 1.2], "64": [speedup * 0.9, speedup * 1.1]}, "pairs": {"1": 9, "64": 3}}  # fmt: skip


@pytest.fixture()
def results(tmp_path):
    """ns rows on cifar10/resnet20 timed on two CPUs, a dense reference, and one old record without latency."""
    records = [
        make_record("dense", density=1.0, latency=timed(1.0)),
        make_record("ns", top1=0.90, density=0.5, hparams={"lam": 1}, latency=timed(1.5, XEON)),
        make_record("ns", top1=0.89, density=0.4, hparams={"lam": 2}, latency=timed(3.0, EPYC)),
        make_record("ns", top1=0.88, density=0.3, hparams={"lam": 3}, latency=timed(2.0, XEON)),
        make_record("ns", top1=0.87, density=0.2, hparams={"lam": 4}, schema_version=2),
    ]
    return write_runs(tmp_path / "results", records)


def structured(board):
    (track,) = [t for t in board.tracks if t.key.granularity == "structured"]
    return track.rows[track.rows["kind"] == "measured"]


def test_sorting_by_speedup_ranks_each_device_on_its_own(results):
    rows = structured(build_leaderboard(results, sort="speedup", reported="none"))
    order = [(row["speed_on"], row["speedup"], row["rank"]) for _, row in rows.iterrows()]
    epyc, xeon = f"{EPYC}, 1 thread · batch 64", f"{XEON}, 1 thread · batch 64"
    assert order[:4] == [(epyc, 3.0, 1), (xeon, 2.0, 1), (xeon, 1.5, 2), (xeon, 1.0, 3)]  # EPYC's 3.0x is not ranked above Xeon's rows
    assert pd.isna(rows.iloc[4]["speed_on"]) and pd.isna(rows.iloc[4]["rank"])  # the old record: listed, unranked


def test_threads_make_a_different_device():
    one, two = (speed_fields(Latency.model_validate(timed(2.0, threads=n)))["speed_on"] for n in (1, 2))
    gpu = speed_fields(Latency.model_validate(timed(2.0, "cuda H200", threads=None)))["speed_on"]
    assert len({one, two, gpu}) == 3 and gpu == "cuda H200 · batch 64"


def test_seeds_timed_on_different_devices_average_only_the_majority_device(tmp_path):
    seeds = [make_record("ns", seed=s, hparams={"lam": 1}, latency=timed(v, d)) for s, v, d in ((0, 2.0, EPYC), (1, 1.0, XEON), (2, 3.0, XEON))]
    (row,) = structured(build_leaderboard(write_runs(tmp_path, seeds), reported="none")).to_dict("records")
    assert row["speed_on"].startswith(XEON) and row["speedup"] == pytest.approx(2.0) and row["speedup_n"] == 2


def test_every_view_shows_the_speedup_beside_the_macs_reduction_with_its_device(results):
    table = render_leaderboard(results, fmt="table", reported="none", wide=True)
    header = next(line for line in table.splitlines() if "MACs ↓" in line)
    assert header.index("MACs ↓") < header.index("speedup") < header.index("measured on")
    assert "1.50× (b1 1.10×)" in table and XEON in table
    markdown = render_leaderboard(results, fmt="markdown", reported="none")
    assert "| MACs ↓ | speedup | measured on |" in markdown and "| 3.00× (b1 1.10×) | cpu EPYC Test, 1 thread · batch 64 |" in markdown
    rows = list(csv.DictReader(io.StringIO(render_leaderboard(results, fmt="csv", reported="none"))))
    timed_rows = {(r["speed_on"], float(r["speedup"])) for r in rows if r["method"] == "ns" and r["speedup"]}
    assert (f"{EPYC}, 1 thread · batch 64", 3.0) in timed_rows and len(timed_rows) == 3
    document = json.loads(render_leaderboard(results, fmt="json", reported="none"))
    speeds = [(r["speedup"], r["speedup_b1"], r["speed_on"]) for t in document["tracks"] for r in t["rows"] if r["method"] == "ns"]
    assert (1.5, 1.1, f"{XEON}, 1 thread · batch 64") in speeds and (None, None, None) in speeds
    page = render_leaderboard(results, fmt="html", reported="none")
    assert ">speedup</th>" in page and ">measured on</th>" in page
    assert "top-1 against measured speedup · cpu EPYC Test" in page and "top-1 against measured speedup · cpu Xeon Test" in page


def test_the_page_sorts_speed_by_device_first(results):
    page = render_leaderboard(results, fmt="html", reported="none")
    assert f'data-v="{XEON}, 1 thread · batch 64 0000002.0000"' in page  # device, then the zero-padded speedup
