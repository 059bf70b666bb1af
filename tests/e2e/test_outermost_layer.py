"""The command's outermost layer: an exception that is not the project's (a bug) is one line
naming the log file that holds its traceback; a terminal that cannot encode a character gets
it escaped, never a UnicodeEncodeError."""

from __future__ import annotations

import re
from pathlib import Path

from support.cli import REPO, run_cli, run_main

from prunebench.harness import cli as harness_cli


def test_a_bug_is_one_line_and_its_traceback_goes_to_the_file_it_names(monkeypatch):
    def broken(args):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(harness_cli, "cmd_methods", broken)
    result = run_main("methods")
    (line,) = result.stderr.splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert line.startswith("prunebench: internal error: TypeError: unhashable type: 'list' (traceback in ")
    log = Path(re.search(r"traceback in (.+)\)$", line).group(1))
    try:
        assert "Traceback" in log.read_text() and "def broken" not in line
    finally:
        log.unlink()


def test_an_ascii_terminal_gets_escapes_not_an_encoding_error(tmp_path):
    config = REPO / "configs" / "smoke" / "dense.yaml"
    result = run_cli("run", str(config), "--set", "café=1", "--dry-run", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.splitlines()
    assert "caf\\xe9: unknown key" in line
