"""The fair protocol: a grid's `budget` split over each method's phases by the shares it declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prunebench import methods
from prunebench.cluster.grid import GridExpansion, load_grid
from prunebench.cluster.plan import FAILED, FINISHED, NEW, RESUME, plan_cost, plan_grid, run_cost
from support.cli import REPO, assert_one_line_error, run_main
from prunebench.harness.config import load_yaml

BENCHMARKS = sorted((REPO / "configs" / "grids" / "benchmark").glob("*.yaml"))


@pytest.mark.parametrize("name", methods.available())
def test_every_method_declares_shares_of_its_own_phases_that_add_up(name: str) -> None:
    cls = methods.get(name)
    assert cls.budget_split, f"{name} declares no budget_split"
    assert set(cls.budget_split) <= set(cls.phases)
    assert sum(cls.budget_split.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", methods.available())
def test_the_epochs_per_phase_add_up_to_the_budget(name: str) -> None:
    cls = methods.get(name)
    used = [phase for phase, share in cls.budget_split.items() if share > 0]
    for budget in range(len(used), 400):
        split = cls.split_budget(budget)
        assert sum(split.values()) == budget, (budget, split)
        assert set(split) == set(used) and min(split.values()) >= 1, (budget, split)
        assert all(abs(split[phase] - cls.budget_split[phase] * budget) < len(used) for phase in used), (budget, split)


def test_global_splits_200_epochs_as_it_declares() -> None:
    assert methods.get("global").split_budget(200) == {"dense": 100, "prune": 50, "finetune": 50}
    assert methods.get("ot").split_budget(200) == {"prune": 160, "finetune": 40}


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.stem)
def test_every_benchmark_run_trains_the_budget_from_one_shared_dense_stage(path: Path) -> None:
    grid = load_grid(path)
    runs = GridExpansion(grid, str(path)).runs()
    stages = {run.stage for run in runs if run.stage}
    assert len(stages) == len(grid.axes.seed)  # one dense stage per seed, global and ltp share it
    for run in runs:
        config = run.config
        if config.run_id() in stages:
            assert config.method.name == "dense" and config.phases.dense.epochs == grid.budget // 2
            continue
        assert config.phases.total_epochs() == grid.budget, run.describe()
        assert {phase: epochs for phase, epochs in
                (("dense", config.phases.dense.epochs), ("prune", config.phases.prune.epochs), ("finetune", config.phases.finetune.epochs))
                if epochs} == methods.get(config.method.name).split_budget(grid.budget)  # fmt: skip
    tracks = {methods.get(run.config.method.name).granularity for run in runs}
    assert tracks == {"none", "unstructured", "structured"}
    assert len({run.config.seed for run in runs}) == 3


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda path: path.stem)
def test_the_benchmark_configs_state_the_split_the_grid_gives_them(path: Path) -> None:
    """Each method file runs alone too (`prunebench run`); its epochs are the grid's split."""
    grid = load_grid(path)
    for name in grid.axes.method:
        raw = load_yaml(grid.method_config.format(method=name, model=grid.axes.model[0]))
        epochs = {phase: value if isinstance(value, int) else value["epochs"] for phase, value in raw["phases"].items()}
        assert epochs == methods.get(name).split_budget(grid.budget), name


def write_budget_grid(tmp_path: Path, budget: object) -> Path:
    grid = {"experiment": "b", "storage_path": str(tmp_path / "runs"), "budget": budget, "shared_dense": True,
            "base": {"model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat"}, "target_compression": 2.0},
            "axes": {"method": ["dense", "global"]}}  # fmt: skip
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_the_cost_line_counts_the_shared_dense_stage_once(tmp_path: Path) -> None:
    result = run_main("submit", str(write_budget_grid(tmp_path, 4)), "--dry-run")
    assert result.returncode == 0, result.stderr
    # dense reference 4 epochs, the stage 2, global 4 of which the stage's 2: 8 epochs of 1,293 digits
    assert result.stdout.splitlines()[-1] == "b: cost 3 of 3 run(s) not finished, 8 epochs, 10,344 training images to process"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("budget", "fragments"),
    [
        (2, ["budget: 2 epoch(s) cannot be split over global's phases dense, prune, finetune (needs at least 3)"]),
        (0, ["budget", "greater than or equal to 1"]),
        (True, ["budget", "integer"]),
        (2.5, ["budget", "integer"]),
    ],
)
def test_a_budget_the_methods_cannot_split_is_one_line_exit_2(tmp_path: Path, budget: object, fragments: list[str]) -> None:
    result = run_main("submit", str(write_budget_grid(tmp_path, budget)), "--dry-run")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


def test_the_cost_line_leaves_out_finished_runs(tmp_path: Path) -> None:
    plan = plan_grid(str(write_budget_grid(tmp_path, 4)), [])
    ids = [run.config.run_id() for run in plan.runs]
    everything = plan_cost(plan, dict.fromkeys(ids, NEW))
    done = plan.runs[-1]  # global from the stage: 2 of its own epochs
    states = {**dict.fromkeys(ids, RESUME), ids[0]: FAILED, done.config.run_id(): FINISHED}  # failed and resumed runs still cost
    left = plan_cost(plan, states)
    epochs = sum(run_cost(run)[0] for run in plan.runs) - run_cost(done)[0]
    assert f"cost 2 of 3 run(s) not finished, {epochs:,} epochs" in left and "cost 3 of 3" in everything
    assert run_cost(done)[0] > 0 and f"{epochs:,} epochs" not in everything
