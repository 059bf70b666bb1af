"""What each command loads: the leaderboard reads JSON and needs no torch, Ray or W&B; planning a
grid (`submit --dry-run`) and a run's dry run need the method and model registries (torch) but no
Ray, and no Torch-Pruning, timm or torchvision (they build and prune models; planning only
validates), nor pandas (the leaderboard's); `prunebench methods` needs torch alone. Each is a
fresh interpreter running the command's entry point, so the modules it lists are the command's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.cli import REPO
from support.records import sample_results

pytestmark = pytest.mark.slow  # a fresh interpreter per command: not in `make test-fast`

HEAVY = ("torch", "ray", "timm", "torchvision", "torch_pruning", "wandb", "pandas")
SCRIPT = """
import json, sys
from prunebench.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": [name for name in %r if name in sys.modules]}))
""" % (HEAVY,)


def loaded_by(*args: str) -> list[str]:
    """The HEAVY modules loaded once `prunebench ARGS` has run (it must succeed)."""
    completed = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0, completed.stderr[-3000:]
    return outcome["loaded"]


def test_the_leaderboard_loads_no_torch_ray_or_wandb(tmp_path) -> None:
    results = sample_results(tmp_path / "results")
    assert loaded_by("leaderboard", str(results), "--format", "html", "--out", str(tmp_path / "board.html")) == ["pandas"]
    assert (tmp_path / "board.html").stat().st_size > 0


def test_a_dry_run_loads_torch_alone(tmp_path) -> None:
    grid = str(REPO / "configs" / "grids" / "smoke.yaml")
    assert ["torch"] == loaded_by("submit", grid, "--dry-run", "--set", f"storage_path={tmp_path / 'runs'}")


def test_a_run_s_dry_run_and_the_method_list_load_torch_alone(tmp_path) -> None:
    config = str(REPO / "configs" / "smoke" / "ns.yaml")
    assert ["torch"] == loaded_by("run", config, "--dry-run", "--out", str(tmp_path / "runs"))
    assert ["torch"] == loaded_by("methods", "--hparams")
