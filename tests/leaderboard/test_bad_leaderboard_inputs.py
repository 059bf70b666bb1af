"""The hostile-results corpus (tests/bad_inputs/leaderboard.yaml): `prunebench leaderboard`
reads only small regular files, parses them with limits, skips a bad record with one
sanitised warning naming the file and the field, and prints no string raw to a terminal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from support.cli import REPO, run_main
from support.corpus import TIME_LIMIT_S, assert_no_raw_control, fill, load_corpus, snapshot
from support.records import failed_record, make_record, write_runs

from prunebench.cluster.plan import plan_grid
from prunebench.cluster.submit import write_leaderboard

CASES = load_corpus("leaderboard.yaml")
WARNING = "prunebench leaderboard: warning: skipped "
GOOD_TRACK = "cifar10 · resnet20 · 3x32x32 · unstructured"
BAD_TRACK = "cifar10 · resnet20 · 3x32x32 · structured"  # the case's ns run, when it is shown


def record_text(case: dict[str, Any]) -> str:
    """The case's record as JSON, with the `raw` fields' JSON text put in as written."""
    record = (failed_record if case.get("failed") else make_record)("ns", seed=5)
    record.update(case.get("record") or {})
    raw = case.get("raw") or {}
    record.update({field: f"@{field}@" for field in raw})
    text = json.dumps(record)
    for field, value in raw.items():
        text = text.replace(json.dumps(f"@{field}@"), value)
    return text


def write_bad(case: dict[str, Any], path: Path) -> None:
    """The case's result.json: its text, or a file that is no small regular file."""
    path.parent.mkdir(parents=True)
    special = case.get("special")
    if special == "fifo":
        os.mkfifo(path)
    elif special == "dev_zero":
        path.symlink_to("/dev/zero")
    elif special == "loop":
        path.symlink_to(path)
    elif special == "sparse_17_mib":
        with path.open("wb") as stream:
            stream.truncate(17 * 2**20)
    else:
        path.write_text(case["text"] if "text" in case else record_text(case), encoding="utf-8")


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_hostile_result_is_skipped_or_shown_escaped(case: dict[str, Any], tmp_path: Path) -> None:
    results = tmp_path / "results"
    if not case.get("only_bad"):
        write_runs(results, [make_record("ltp", seed=0)])
    bad = results / case.get("dir", "bad") / "result.json"
    write_bad(case, bad)
    places = {"tmp": str(tmp_path), "bad": str(bad)}
    args = fill(case.get("args") or [], places)
    if "--format" not in args:
        args.append("--wide")  # the table with every column, each escaped
    out = Path(args[args.index("--out") + 1]) if "--out" in args else None
    before = snapshot(tmp_path)
    start = time.monotonic()
    result = run_main("leaderboard", str(results), *args, cwd=tmp_path, timeout=30)
    elapsed = time.monotonic() - start

    assert "Traceback" not in result.stderr, result.stderr
    shown = out.read_text(encoding="utf-8") if out is not None else result.stdout
    assert_no_raw_control(shown, result.stderr)
    lines = result.stderr.splitlines()
    expected = case["warning"]
    if expected is None:  # the run is shown, its strings escaped
        assert result.returncode == 0 and case["shown"], result.stderr
        assert lines == ([f"leaderboard written to {out}"] if out is not None else []), result.stderr
    else:
        assert lines and lines[0].startswith(WARNING), result.stderr
        for fragment in fill(expected, places):
            assert fragment in lines[0], (fragment, lines[0])
        if case.get("only_bad"):
            assert result.returncode == 2 and len(lines) == 2, result.stderr
            assert lines[1] == f"prunebench: error: {results}: no readable result records (1 skipped)"
        else:
            assert result.returncode == 0 and len(lines) == 1, result.stderr
            assert GOOD_TRACK in shown and BAD_TRACK not in shown
    for fragment in fill(case.get("shown") or [], places):
        assert fragment in shown, (fragment, shown)
    written = {str(out.relative_to(tmp_path))} if out is not None else set()
    assert snapshot(tmp_path) == before | written, "the leaderboard wrote files"
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.1f} s"


def test_a_grid_warns_once_for_a_skipped_record_though_it_draws_two_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The end of `submit` shows the table and writes the page from one read of the store."""
    plan = plan_grid(str(REPO / "configs" / "grids" / "smoke.yaml"), [f"storage_path={tmp_path}", "axes.method=[dense]"])
    write_runs(tmp_path, [make_record("ltp", seed=0, experiment="smoke")])
    broken = tmp_path / "smoke" / "broken" / "result.json"
    broken.parent.mkdir()
    broken.write_text('{"run_id": ')
    table, page = write_leaderboard(plan)
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith(WARNING) and str(broken) in warning
    assert "ltp" in table and Path(page).is_file()


def test_out_naming_a_fifo_is_refused_without_waiting_for_a_reader(tmp_path: Path) -> None:
    results = write_runs(tmp_path / "results", [make_record("ltp", seed=0)])
    os.mkfifo(tmp_path / "fifo")
    start = time.monotonic()
    result = run_main("leaderboard", str(results), "--out", str(tmp_path / "fifo"), cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and result.stderr.strip() == f"prunebench: error: --out {tmp_path / 'fifo'}: not a regular file"
    assert time.monotonic() - start < TIME_LIMIT_S
