"""`prunebench run`'s conventions: --version, a help with a description and examples, and one name
for the storage root (a grid's storage_path) with --out as its older name."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from support.cli import REPO, run_main

SMOKE = str(REPO / "configs" / "smoke" / "dense.yaml")


def test_version() -> None:
    result = run_main("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"prunebench {version('prunebench')}"


def test_run_help_describes_the_command_with_two_examples() -> None:
    result = run_main("run", "--help")
    assert result.returncode == 0
    assert "Train one run config in this process" in result.stdout and "train.log" in result.stdout
    examples = result.stdout.split("examples:\n", 1)[1].splitlines()
    assert len([line for line in examples if line.strip().startswith("prunebench run configs/")]) == 2


def test_storage_path_and_its_older_name_out(tmp_path: Path) -> None:
    ends = set()
    for flag in ("--storage-path", "--out"):
        result = run_main("run", SMOKE, flag, str(tmp_path / "store"), "--dry-run")
        assert result.returncode == 0, result.stderr
        ends.add(result.stdout.splitlines()[-1].split(" -> ")[1])
    assert len(ends) == 1 and ends.pop().startswith(str(tmp_path / "store" / "smoke" / "dense-"))
    assert not (tmp_path / "store").exists()
