"""Random unstructured pruning: exact densities, masks that change with the seed, and another
run's layer profile taken through `match`."""

import copy

import pytest
import torch

from prunebench import methods
from prunebench.core.metrics import count_prunable, prunable_modules
from prunebench.core.sources import SourceRuns
from prunebench.core.storage import Storage
from prunebench.harness.models import create
from prunebench.methods.random_unstructured import uniform_counts
from support.cli import REPO, assert_one_line_error, run_main
from support.sources import write_source

SHAPE = (3, 32, 32)


def random_pruned(seed: int, target: float = 4.0, **hparams) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = create("resnet20", 10)
    torch.manual_seed(seed)  # the run's seeded state at set-up
    method = methods.create("random", **hparams)
    method.setup(target, 0, 1, SHAPE)
    pruned = method.finalize(method.attach(model))
    return pruned, [module.weight != 0 for _, module in prunable_modules(pruned)]


def test_uniform_masks_hit_the_density_exactly_in_total_and_per_layer():
    model, masks = random_pruned(seed=0, target=3.0)
    total, nonzero = count_prunable(model)
    assert nonzero == round(total / 3.0)
    sizes = [mask.numel() for mask in masks]
    assert [int(mask.sum()) for mask in masks] == uniform_counts(sizes, 1 / 3.0)
    assert all(abs(int(mask.sum()) - size / 3.0) < 1 for mask, size in zip(masks, sizes))


def test_masks_differ_between_seeds_and_repeat_for_one_seed():
    _, first = random_pruned(seed=0)
    _, again = random_pruned(seed=0)
    _, other = random_pruned(seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(not torch.equal(a, b) for a, b in zip(first, other))
    overlap = sum(int((a & b).sum()) for a, b in zip(first, other)) / sum(int(a.sum()) for a in first)
    assert overlap == pytest.approx(0.25, abs=0.02)  # independent draws at density 1/4 share a quarter


def test_match_takes_another_runs_per_layer_densities(tmp_path):
    dense = create("resnet20", 10)
    profile = copy.deepcopy(dense)
    with torch.no_grad():  # a layer profile no uniform rule gives: layer i keeps 1 / (i + 2)
        for index, (_, module) in enumerate(prunable_modules(profile)):
            flat = module.weight.view(-1)
            flat[: flat.numel() - flat.numel() // (index + 2)] = 0
    run_id = write_source(tmp_path, "unit", dense, profile, SHAPE, method="global", model="resnet20")
    method = methods.create("random", match=run_id)
    method.read_runs(SourceRuns(Storage(str(tmp_path)), "unit", "resnet20", "digits"))
    torch.manual_seed(3)
    method.setup(None, 0, 1, SHAPE)
    model = create("resnet20", 10)
    method.check_model(model)
    pruned = method.finalize(model)
    kept = [int(torch.count_nonzero(m.weight)) for _, m in prunable_modules(pruned)]
    assert kept == [int(torch.count_nonzero(m.weight)) for _, m in prunable_modules(profile)]
    assert not torch.equal(prunable_modules(pruned)[0][1].weight != 0, prunable_modules(profile)[0][1].weight != 0)


def smoke(*sets: str, out) -> list:
    args = ["run", str(REPO / "configs" / "smoke" / "random.yaml"), "--out", str(out)]
    return run_main(*args, *(part for value in sets for part in ("--set", value)))


@pytest.mark.parametrize("case", ["missing", "unfinished", "other_model", "other_data", "not_an_id"])
def test_a_bad_match_is_one_line_and_writes_nothing(case, tmp_path):
    dense = create("resnet20", 10)
    overrides = {"other_model": {"model": "resnet32"}, "other_data": {"dataset": "cifar10"}}.get(case, {})
    run_id = write_source(tmp_path, "smoke", dense, dense, SHAPE, method="global",
                          status="failed" if case == "unfinished" else "finished", **overrides)  # fmt: skip
    name = {"missing": "global-resnet20-digits-s0-000000000000", "not_an_id": "../smoke"}.get(case, run_id)
    before = sorted(tmp_path.rglob("*"))
    result = smoke(f"method.hparams.match={name}", out=tmp_path)
    expected = {"missing": "no finished run", "unfinished": "has not finished", "other_model": "not resnet20 on digits",
                "other_data": "not resnet20 on digits", "not_an_id": "hparams.match"}[case]  # fmt: skip
    assert_one_line_error(result, "match", expected)
    assert sorted(tmp_path.rglob("*")) == before
