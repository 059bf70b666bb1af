"""Iterative magnitude pruning with rewinding: rounds that fall by the rate to the target, the
trail showing each, weights or the learning-rate schedule rewound, every round's epochs in a
grid's cost, and bad settings refused before anything runs."""

import copy

import pytest
import torch
import yaml

from prunebench import methods
from prunebench.cluster.grid import GridExpansion, load_grid
from prunebench.cluster.plan import run_cost
from prunebench.core.errors import UserError
from prunebench.core.metrics import count_prunable, prunable_modules
from prunebench.harness.lifecycle import execute_run
from prunebench.harness.models import create
from prunebench.harness.validation import validate_run_config
from prunebench.methods.imp import round_densities, round_lengths
from support.cli import REPO, assert_one_line_error, run_main


def test_rounds_fall_by_the_rate_and_stop_at_the_target():
    assert round_densities(0.5, 10.0) == [0.5, 0.25, 0.125, 0.1]
    densities = round_densities(0.2, 4.0)
    assert len(densities) == 7 and densities[-1] == 0.25
    assert all(b == pytest.approx(0.8 * a) for a, b in zip(densities[:-2], densities[1:-1]))
    assert round_densities(0.5, 4.0) == [0.5, 0.25]  # exactly reached: no extra round
    assert round_lengths(10, 4) == [2, 3, 2, 3] and sum(round_lengths(100, 7)) == 100


def tiny(tmp_path, **changes) -> dict:
    raw = {
        "experiment": "imp", "model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 64},
        "method": {"name": "imp", "hparams": {"rate": 0.5}}, "phases": {"dense": 2, "prune": 4},
        "optimizer": {"lr": 0.05}, "target_compression": 10.0, "threads": 1, "latency": {"enabled": False},
        "output_dir": str(tmp_path),
    }  # fmt: skip
    raw.update(changes)
    return raw


@pytest.mark.parametrize("rewind", ["lr", "weights"])
def test_the_trail_has_one_entry_per_round_with_density_falling_by_the_rate(rewind, tmp_path):
    hparams = {"rate": 0.5, "rewind": rewind, **({"rewind_epoch": 1} if rewind == "weights" else {})}
    record = execute_run(validate_run_config(tiny(tmp_path, method={"name": "imp", "hparams": hparams})))
    assert record.finished, record.error
    rounds = [entry for entry in record.trail if entry.phase == "prune"]
    assert [entry.density for entry in rounds] == pytest.approx([0.5, 0.25, 0.125, 0.1], abs=1e-5)
    assert record.density == pytest.approx(0.1, abs=1e-5) and record.epochs == 6
    # the schedule starts again each round: every round ends at the same point of its cosine (one
    # cosine over the phase would end its four epochs at 85%, 50%, 15% and 0% of the lr)
    assert [entry.lr for entry in rounds] == pytest.approx([rounds[0].lr] * 4, rel=1e-9)


def test_weight_rewinding_sets_every_round_back_to_the_rewind_epoch_masked():
    torch.manual_seed(0)
    model = create("lenet_300_100", 10, 1, 8)
    method = methods.create("imp", rate=0.5, rewind="weights", rewind_epoch=1)
    method.setup(4.0, 2, 10, (64,))
    method.on_dense_epoch_end(model, 1)
    rewound = copy.deepcopy(model.state_dict())
    with torch.no_grad():  # the dense phase trains on after epoch 1
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    trained = [module.weight.detach().clone() for _, module in prunable_modules(model)]
    method.on_dense_epoch_end(model, 2)  # not the rewind epoch: nothing kept
    method.attach(model)
    first = [mask.clone() for mask in method.masks]
    flat = torch.cat([w.abs().flatten() for w in trained])
    kept = torch.cat([m.flatten() for m in first])
    assert flat[kept].min() >= flat[~kept].max()  # masks from the trained weights' magnitudes
    for (_, module), mask, key in zip(prunable_modules(model), first, [k for k in rewound if k.endswith("weight")]):
        assert torch.equal(module.weight.detach(), rewound[key] * mask)  # ...applied to the rewound ones
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1)
    method.apply_masks(model)
    method.on_epoch_end(model, 4, {})  # round 1 (1 epoch of 2) ends
    total, nonzero = count_prunable(model)
    assert nonzero == round(total / 4.0)
    assert all(not (new & ~old).any() for new, old in zip(method.masks, first))  # round 2 prunes within round 1's mask
    for (_, module), mask, key in zip(prunable_modules(model), method.masks, [k for k in rewound if k.endswith("weight")]):
        assert torch.equal(module.weight.detach(), rewound[key] * mask)


def smoke(*sets: str, out):
    args = ["run", str(REPO / "configs" / "smoke" / "imp.yaml"), "--out", str(out)]
    return run_main(*args, *(part for value in sets for part in ("--set", value)))


@pytest.mark.parametrize("sets, fragments", [
    (["method.hparams.rate=0"], ["method 'imp': hparams.rate", "greater than 0"]),
    (["method.hparams.rate=1"], ["method 'imp': hparams.rate", "less than 1"]),
    (["method.hparams.rate=1.5"], ["method 'imp': hparams.rate"]),
    (["method.hparams.rewind=weights", "method.hparams.rewind_epoch=9"], ["hparams.rewind_epoch", "epoch 9 is beyond the dense phase (8 epochs)"]),
    (["method.hparams.rewind=weights"], ["hparams.rewind_epoch", "needs the dense-phase epoch"]),
    (["method.hparams.rewind_epoch=2"], ["hparams.rewind_epoch", "only with rewind: weights"]),
    (["phases.prune=1"], ["phases.prune", "at least 2 epoch(s)"]),
])  # fmt: skip
def test_bad_rewinding_settings_are_one_line_and_write_nothing(sets, fragments, tmp_path):
    result = smoke(*sets, out=tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_a_grid_counts_every_rounds_epochs_and_gives_weight_rewinding_its_own_dense_phase(tmp_path):
    grid = {
        "experiment": "smoke", "storage_path": str(tmp_path / "runs"), "method_config": "configs/smoke/{method}.yaml",
        "shared_dense": True,
        "axes": {"method": {"dense": None, "imp": {"hparams": {"rewind": ["lr", "weights"], "rewind_epoch": [None, 4]}}}},
    }  # fmt: skip
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    with pytest.raises(UserError, match="only with rewind: weights"):  # lr with a rewind epoch: refused while planning
        GridExpansion(load_grid(path), str(path)).runs()
    path.write_text(yaml.safe_dump({**grid, "axes": {"method": {"dense": None, "imp": {"hparams": {"rewind": "lr"}}}}}))
    (stage, lr) = GridExpansion(load_grid(path), str(path)).runs()
    assert lr.stage == stage.config.run_id() and run_cost(lr)[0] == 6  # both rounds' 3 epochs, not the stage's 8
    path.write_text(yaml.safe_dump({**grid, "axes": {"method": {"imp": {"hparams": {"rewind": "weights", "rewind_epoch": 4}}}}}))
    (weights,) = GridExpansion(load_grid(path), str(path)).runs()
    assert weights.stage is None and run_cost(weights)[0] == 14
    result = run_main("submit", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("smoke: cost 1 of 1 run(s) not finished, 14 epochs")
