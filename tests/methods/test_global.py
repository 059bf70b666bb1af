"""Global magnitude pruning against torch.nn.utils.prune and Zhu & Gupta's schedule."""

import copy

from support import fidelity
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.metrics import count_prunable, prunable_modules
from prunebench.harness.models import available, create
from prunebench.methods.global_magnitude import cubic_sparsity, global_magnitude_masks


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


def test_masks_remove_exactly_the_count_when_magnitudes_tie():
    """Gradual pruning leaves many weights at exactly zero: the count removed is still
    round(sparsity * N), and of tied magnitudes the earliest in layer order go first."""
    first, second = torch.tensor([0.0, 0.5, 0.0, -0.2]), torch.tensor([[0.0, 0.2], [0.9, 0.0]])
    keep = global_magnitude_masks([first, second], 0.25)  # 2 of the 4 zeros
    assert keep[0].tolist() == [False, True, False, True] and keep[1].all()
    keep = global_magnitude_masks([first, second], 0.625)  # every zero and the first -0.2 / 0.2 tie
    assert keep[0].tolist() == [False, True, False, False] and keep[1].tolist() == [[False, True], [True, False]]
    assert sum(int((~mask).sum()) for mask in keep) == 5


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


# --- preset: shrinkbench (ShrinkBench's GlobalMagWeight, as LTP's Tables 5-7 used it) ----------


def _with_bn_and_biases() -> nn.Module:
    """Conv with bias + BatchNorm + two Linear layers, BatchNorm given non-trivial values."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.Flatten(), nn.Linear(32 * 6 * 6, 64), nn.ReLU(), nn.Linear(64, 10))
    nn.init.normal_(model[1].weight)
    nn.init.normal_(model[1].bias)
    return model


def _shrinkbench_compression(model: nn.Module) -> float:
    """ShrinkBench's metrics/size.py model_size: all parameters / nonzero parameters."""
    total = sum(p.numel() for p in model.parameters())
    return total / sum(int(torch.count_nonzero(p)) for p in model.parameters())


def test_shrinkbench_preset_prunes_as_shrinkbench_and_counts_all_parameters():
    model = _with_bn_and_biases()
    before = copy.deepcopy(model)
    method = methods.create("global", preset="shrinkbench")
    method.setup(target_compression=4.0, prune_epochs=1, steps_per_epoch=1, input_shape=(3, 8, 8))
    method.attach(model)  # one-shot: at the target as soon as the prune phase starts
    assert _shrinkbench_compression(model) == pytest.approx(4.0, rel=1e-3)
    for kept in (model[1].weight, model[1].bias, model[6].weight, model[6].bias):  # BatchNorm and classifier dense
        assert int(torch.count_nonzero(kept)) == kept.numel()
    assert torch.equal(model[6].weight, before[6].weight) and torch.equal(model[1].bias, before[1].bias)
    pruned = [(model[0].weight, before[0].weight), (model[0].bias, before[0].bias), (model[4].weight, before[4].weight), (model[4].bias, before[4].bias)]
    assert all(int((now == 0).sum()) > 0 for now, _ in pruned)  # biases too
    dropped = torch.cat([was[now == 0].abs() for now, was in pruned])
    kept = torch.cat([was[now != 0].abs() for now, was in pruned])
    assert dropped.max() <= kept.min()  # one threshold over weights and biases
    total, nonzero = count_prunable(model)  # our record's definition differs: weights only
    assert total / nonzero > 4.0 * (1 + 1e-3)  # the dense BatchNorm and classifier bias weigh in ShrinkBench's count


def test_shrinkbench_preset_holds_every_mask_after_each_step():
    model = _with_bn_and_biases()
    method = methods.create("global", preset="shrinkbench")
    method.setup(target_compression=4.0, prune_epochs=1, steps_per_epoch=5, input_shape=(3, 8, 8))
    method.attach(model)
    zeros = [(t == 0).clone() for t in (model[0].weight, model[0].bias, model[4].weight, model[4].bias)]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # an optimizer step would revive pruned entries
    method.after_step(model, 0)
    for mask, t in zip(zeros, (model[0].weight, model[0].bias, model[4].weight, model[4].bias)):
        assert torch.equal(t == 0, mask)


@pytest.mark.parametrize("name", available())
def test_classifier_is_the_last_prunable_layer_of_every_model(name):
    """prune_classifier=False keeps the last Conv/Linear layer dense: it must be the output layer."""
    geometry = {"lenet_300_100": (1, 8)}.get(name, (3, 32))
    _, last = prunable_modules(create(name, 7, *geometry))[-1]
    assert (last.out_features if isinstance(last, nn.Linear) else last.out_channels) == 7


def test_preset_conflicts_and_unreachable_targets_are_user_errors():
    with pytest.raises(UserError, match="preset shrinkbench sets schedule=one_shot"):
        methods.create("global", preset="shrinkbench", schedule="gradual")
    with pytest.raises(UserError, match="prune_biases needs compression_of=all_parameters"):
        methods.create("global", prune_biases=True)
    method = methods.create("global", preset="shrinkbench")
    method.setup(target_compression=1000.0, prune_epochs=1, steps_per_epoch=1, input_shape=(3, 8, 8))
    with pytest.raises(UserError, match="target_compression: 1000 cannot be reached counting all_parameters"):
        method.attach(_with_bn_and_biases())


def test_shrinkbench_run_records_our_compression_definition(tmp_path):
    """Through the training loop: the model meets the target in ShrinkBench's count, while the
    record's compression_rate is ours (Conv/Linear weights / nonzero ones)."""
    from prunebench.core.device import Worker
    from prunebench.harness.lifecycle import train_and_test
    from prunebench.harness.train import Trainer
    from prunebench.harness.validation import validate_run_config

    config = validate_run_config({
        "model": {"name": "lenet_300_100"}, "data": {"name": "digits", "layout": "flat", "batch_size": 100},
        "method": {"name": "global", "hparams": {"preset": "shrinkbench"}}, "phases": {"prune": 1},
        "target_compression": 3.0, "threads": 1, "output_dir": str(tmp_path),
    })  # fmt: skip
    record, model = train_and_test(Trainer(config, Worker(), None, []), config.run_files())
    record = record.model_dump()
    total, nonzero = count_prunable(model)
    assert record["compression_rate"] == pytest.approx(total / nonzero)
    assert _shrinkbench_compression(model) == pytest.approx(3.0, rel=1e-3)
    assert record["compression_rate"] > 3.0 * (1 + 1e-3)
