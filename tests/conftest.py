"""Shared test helpers: the CLI as a user runs it, and smoke runs cached for the session."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from object_storage import S3Server, s3_server

from core.record import ResultRecord
from core.storage import RESULT_FILE, Storage

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900) -> CliResult:
    """`prunebench ARGS` in a subprocess, exactly as a user would run it."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    completed = subprocess.run(
        [sys.executable, "-m", "prunebench", *args],
        cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def run_main(*args: str, cwd: Path | None = None, timeout: float = 60) -> CliResult:
    """`prunebench ARGS` inside this process: the same entry point as the command, without an
    interpreter start (a bad-input case costs milliseconds, not seconds). An exception that
    escapes `main` shows as its traceback on stderr, exit status 1; a call that outlives
    `timeout` fails the test as a hang."""
    from prunebench.cli import main

    out, err, outcome = io.StringIO(), io.StringIO(), {}

    def call() -> None:
        try:
            outcome["code"] = main(list(args))
        except SystemExit as exc:  # argparse
            outcome["code"] = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - reported like the interpreter would
            err.write(traceback.format_exc())
            outcome["code"] = 1

    with contextlib.chdir(cwd or REPO), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(timeout)
    assert not worker.is_alive(), f"prunebench {' '.join(args)} still running after {timeout} s"
    return CliResult(outcome["code"], out.getvalue(), err.getvalue())


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """Bad input: exit 2, exactly one line on stderr naming what is wrong, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory: pytest.TempPathFactory):
    """`smoke_results(name)` runs configs/smoke/NAME.yaml once per session and returns its record."""
    out = tmp_path_factory.mktemp("smoke")
    cache: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in cache:
            result = run_cli("run", str(REPO / "configs" / "smoke" / f"{name}.yaml"), "--out", str(out))
            assert result.returncode == 0, result.stderr[-3000:]
            (path,) = (out / "smoke").glob(f"{name}-*/result.json")
            cache[name] = json.loads(path.read_text())
        return cache[name]

    return get


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server (moto) on loopback for the session, with an empty bucket."""
    with s3_server() as server:
        yield server


def write_result(run_dir: Path, record: dict) -> Path:
    """Write a hand-made record as RUN_DIR/result.json through the production writer (which
    validates it against the record schema)."""
    run_dir = Path(run_dir)
    Storage(str(run_dir.parent.parent)).run(run_dir.parent.name, run_dir.name).write_record(ResultRecord.model_validate(record))
    return run_dir / RESULT_FILE


def read_result(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RESULT_FILE).read_text())


def saved_checkpoint(run_dir: Path) -> dict | None:
    """The run's last epoch checkpoint (written atomically), which a restarted worker resumes from."""
    try:
        return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError):  # not there yet, or replaced meanwhile
        return None
