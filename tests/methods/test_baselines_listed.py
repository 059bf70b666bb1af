"""The baselines as a user finds them: in `prunebench methods`, and in the fair-protocol grids'
plans at the methods' levels with their cost."""

import pytest

from support.cli import REPO, run_main

BASELINES = {"random": "unstructured", "random_channels": "structured", "l1_filters": "structured", "snip": "unstructured", "imp": "unstructured"}


def test_prunebench_methods_lists_the_five_baselines():
    result = run_main("methods")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert {name: listed.get(name) for name in BASELINES} == BASELINES


@pytest.mark.parametrize("grid", ["cifar10-resnet56", "imagenet-resnet50"])
def test_a_benchmark_grid_dry_run_lists_the_baselines_with_their_cost(grid, tmp_path):
    path = REPO / "configs" / "grids" / "benchmark" / f"{grid}.yaml"
    result = run_main("submit", str(path), "--dry-run", "--set", f"storage_path={tmp_path}")
    assert result.returncode == 0, result.stderr
    budget = 200 if grid.startswith("cifar") else 90
    lines = result.stdout.splitlines()
    for name in BASELINES:  # two levels, three seeds, every run at the budget
        runs = [line for line in lines if line.split("] ", 1)[-1].split()[0] == name]
        assert len(runs) == 6 and all(f" {budget} epochs " in line for line in runs), (name, runs)
    levels = lambda name, word: sorted({line.split(word)[1].split()[0] for line in lines if f"] {name} " in line})  # noqa: E731
    assert levels("random", "target ") == levels("global", "target ") == levels("imp", "target ") == ["4x", "8x"]
    assert levels("l1_filters", "prune_ratio=") == levels("ns", "prune_ratio=") == ["0.3", "0.5"]
    assert "(from dense stage" in next(line for line in lines if "] random " in line)
    cost = lines[-1]
    assert cost.startswith(f"benchmark-{grid}: cost 72 of 72 run(s) not finished, ") and cost.endswith(" training images to process")
