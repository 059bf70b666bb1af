"""One import name: the built wheel holds `prunebench` and nothing else at its top level, and the
layers' folders are not importable by their bare names outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.cli import REPO

pytestmark = pytest.mark.slow  # builds the wheel: not in `make test-fast`

LAYERS = ("core", "methods", "harness", "cluster", "leaderboard")


def test_the_wheel_has_one_top_level_name_with_every_layer_inside(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path), str(REPO)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("prunebench-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["prunebench"]
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"prunebench"}
    for layer in LAYERS:
        assert f"prunebench/{layer}/__init__.py" in names, layer
    assert "prunebench/leaderboard/reported.csv" in names  # package data travels with its layer


def test_bare_layer_names_do_not_import_outside_the_checkout(tmp_path: Path) -> None:
    for layer in LAYERS:
        bare = subprocess.run([sys.executable, "-c", f"import {layer}"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert bare.returncode != 0 and "ModuleNotFoundError" in bare.stderr, layer
    named = subprocess.run([sys.executable, "-c", "import prunebench.core.errors, prunebench.leaderboard.views"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert named.returncode == 0, named.stderr
