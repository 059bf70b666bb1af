"""The bad-grid corpus (tests/bad_inputs/grid.yaml): `prunebench submit` refuses each case with
one line naming the field or file, exit status 2, no traceback, nothing written, within seconds.

No remote storage is contacted: a storage that never answers is either the probe replaced by
a script that never returns, or a real S3 client pointed at a local socket that accepts
connections and never replies (with credentials and the EC2 metadata lookup switched off)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import REPO, assert_one_line_error, run_main
from support.corpus import TIME_LIMIT_S, assert_no_raw_control, closed_port, fill, load_corpus, snapshot

from prunebench.core import storage as core_storage
from prunebench.cluster.grid import merge

CASES = load_corpus("grid.yaml")
BASE_GRID: dict[str, Any] = {
    "experiment": "g",
    "storage_path": "{tmp}/runs",
    "base": {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64}, "phases": {"dense": 1}},
    "axes": {"method": ["dense"]},
}
# The S3 client's view of a local black hole: nothing outside this machine is asked.
OFFLINE_AWS = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}  # fmt: skip


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An S3 URI whose endpoint is a local socket that accepts connections and never replies."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # the kernel completes handshakes; nobody ever reads or answers
        yield f"s3://prunebench/runs?endpoint_override=127.0.0.1:{sock.getsockname()[1]}&scheme=http&region=us-east-1"


def silence_storage(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage that never answers, within a 1 s bound: `probe` replaces the probe script,
    `socket` keeps it and only takes the S3 client offline (the URI is the black hole)."""
    monkeypatch.setattr(core_storage, "REMOTE_TIMEOUT_S", 1.0)
    if kind == "probe":
        monkeypatch.setattr(core_storage, "PROBE_SCRIPT", REPO / "tests" / "support" / "storage_never_answers.py")
    for name, value in OFFLINE_AWS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module", autouse=True)
def imported() -> None:
    """The command's modules loaded before the first case is timed: the bound is on the refusal."""
    import prunebench.cli  # noqa: F401


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


def write_case(case: dict[str, Any], tmp_path: Path, places: dict[str, str]) -> Path:
    """The case's files, pipes and grid file; returns the grid's path."""
    for name, content in fill(case.get("files") or {}, places).items():
        (tmp_path / name).write_text(content)
    for name in case.get("fifos") or []:
        os.mkfifo(tmp_path / name)
    path = tmp_path / case.get("grid_name", "grid.yaml")
    if case.get("no_grid"):
        return path
    text = (
        case["grid_text"] if "grid_text" in case else yaml.safe_dump(merge(fill(BASE_GRID, places), fill(case.get("grid") or {}, places)))
    )
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_grid_is_refused_cleanly(case: dict[str, Any], tmp_path: Path, black_hole: str, monkeypatch: pytest.MonkeyPatch) -> None:
    places = {"tmp": str(tmp_path), "port": str(closed_port()), "black_hole": black_hole}
    grid = write_case(case, tmp_path, places)
    if case.get("hang"):
        silence_storage(case["hang"], monkeypatch)
    before = snapshot(tmp_path)
    start = time.monotonic()
    result = run_main("submit", str(grid), *fill(case.get("args", ["--dry-run"]), places), cwd=tmp_path, timeout=30)
    elapsed = time.monotonic() - start
    assert_one_line_error(result, *fill(case["expect"], places))
    assert result.stdout == ""
    assert_no_raw_control(result.stderr)
    assert snapshot(tmp_path) == before, "a refused grid wrote files"
    assert elapsed < TIME_LIMIT_S, f"refused after {elapsed:.1f} s"
