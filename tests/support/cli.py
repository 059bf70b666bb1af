"""The CLI as a user runs it: in a subprocess, or through the same entry point in this process,
and the one-line-error contract every bad input is held to."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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
