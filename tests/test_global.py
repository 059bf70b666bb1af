"""Global magnitude pruning against torch.nn.utils.prune and Zhu & Gupta's schedule."""

import copy

import fidelity_fixtures as fidelity
import pytest
import torch
from torch.nn.utils import prune

import methods
from core.errors import UserError
from core.metrics import count_prunable, prunable_modules
from harness.models import create
from methods.global_magnitude import cubic_sparsity, global_magnitude_masks


def test_masks_equal_torch_global_unstructured_l1():
    torch.manual_seed(0)
    model = create("resnet20", 10)
    reference = copy.deepcopy(model)
    amount = 0.8
    pairs = [(module, "weight") for _, module in prunable_modules(reference)]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=amount)
    ours = global_magnitude_masks([m.weight for _, m in prunable_modules(model)], amount)
    for (module, _), mask in zip(pairs, ours):
        assert torch.equal(module.weight_mask.bool(), mask)


def test_one_shot_finalize_reaches_the_target_compression():
    model = create("resnet20", 10)
    method = methods.create("global", schedule="one_shot")
    method.setup(target_compression=5.0, prune_epochs=0, steps_per_epoch=1, input_shape=(3, 32, 32))
    dense_total, _ = count_prunable(model)
    pruned = method.finalize(method.attach(model))
    _, nonzero = count_prunable(pruned)
    assert dense_total / nonzero == pytest.approx(5.0, rel=1e-3)


def test_cubic_schedule_matches_zhu_and_gupta():
    assert cubic_sparsity(0, 100, 0.0, 0.9) == pytest.approx(0.0)
    assert cubic_sparsity(50, 100, 0.0, 0.9) == pytest.approx(0.9 + (0.0 - 0.9) * 0.5**3)
    assert cubic_sparsity(100, 100, 0.1, 0.9) == pytest.approx(0.9)
    assert cubic_sparsity(150, 100, 0.1, 0.9) == pytest.approx(0.9)


def test_gradual_schedule_raises_sparsity_monotonically_and_holds_masks():
    torch.manual_seed(0)
    model = create("lenet_300_100", 10, 1, 8)
    method = methods.create("global", schedule="gradual", update_every=1, ramp_fraction=1.0)
    method.setup(target_compression=10.0, prune_epochs=1, steps_per_epoch=10, input_shape=(64,))
    method.attach(model)
    densities = []
    for step in range(10):
        with torch.no_grad():
            for _, module in prunable_modules(model):
                module.weight.add_(0.01)  # an optimizer step would revive pruned weights
        method.after_step(model, step)
        total, nonzero = count_prunable(model)
        densities.append(nonzero / total)
    assert all(a >= b for a, b in zip(densities, densities[1:]))
    assert densities[-1] == pytest.approx(0.1, abs=1e-3)


@pytest.mark.parametrize("schedule", ["one_shot", "gradual"])
def test_finalized_model_is_the_model_times_torchs_global_l1_mask(schedule):
    """After a few steps that move the weights (gradual: still below the target sparsity),
    finalize computes (within 1e-6 of the largest logit) what the model before it computes with
    torch.nn.utils.prune's global L1 mask at the target sparsity applied to its prunable weights:
    the hard mask is the only change."""
    generator = torch.Generator().manual_seed(0)
    model = fidelity.randomize_batchnorms(fidelity.create_model("resnet20"), generator)
    method = methods.create("global", schedule=schedule, update_every=1)
    method.setup(target_compression=5.0, prune_epochs=1, steps_per_epoch=10, input_shape=fidelity.SHAPE)
    method.attach(model)
    for step in range(3):
        with torch.no_grad():
            for _, module in prunable_modules(model):
                module.weight.add_(0.01 * torch.randn(module.weight.shape, generator=generator))
        method.after_step(model, step)
    reference = copy.deepcopy(model)
    pairs = [(module, "weight") for _, module in prunable_modules(reference)]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=1 - 1 / 5.0)
    for module, name in pairs:
        prune.remove(module, name)
    x = fidelity.random_inputs(generator)
    pruned = method.finalize(model)
    assert fidelity.relative_deviation(fidelity.logits(pruned, x), fidelity.logits(reference, x)) <= 1e-6


def test_global_requires_a_target():
    with pytest.raises(UserError, match="target_compression: method 'global'"):
        methods.create("global").setup(target_compression=None, prune_epochs=1, steps_per_epoch=1, input_shape=(64,))
