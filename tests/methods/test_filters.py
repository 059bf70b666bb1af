"""L1-norm filters (Li et al. 2017) and random channels: which filters go, how many per layer,
and another run's widths taken through `match`, all through the channel graph of NS and OT."""

import copy

import pytest
import torch
from torch import nn

from prunebench import methods
from prunebench.core.metrics import layer_facts, prunable_modules
from prunebench.core.sources import SourceRuns
from prunebench.core.storage import Storage
from prunebench.harness.models import create
from support.sources import write_source

SHAPE = (3, 32, 32)


def plain_net() -> nn.Module:
    """conv(3->8)-BN-ReLU, conv(8->6)-BN-ReLU, pooling, classifier: no residual adds."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4),
    )  # fmt: skip


def finalized(name: str, model: nn.Module, seed: int = 0, shape=SHAPE, **hparams) -> nn.Module:
    torch.manual_seed(seed)
    method = methods.create(name, **hparams)
    method.setup(None, 0, 1, shape)
    method.check_model(model)
    return method.finalize(method.attach(model))


def test_l1_removes_the_filters_of_smallest_l1_norm():
    torch.manual_seed(0)
    model = plain_net()
    with torch.no_grad():  # filter j of the first conv: L1 norm set by hand, out of order
        norms = torch.tensor([5.0, 1.0, 7.0, 2.0, 8.0, 3.0, 6.0, 4.0])
        weight = model[0].weight
        weight.copy_(weight.sign() * norms.view(-1, 1, 1, 1) / weight[0].numel())
    original = model[0].weight.detach().clone()
    pruned = finalized("l1_filters", model, shape=(3, 8, 8), prune_ratio=0.5)
    kept = pruned[0].weight.detach()
    expected = sorted(torch.topk(norms, 4).indices.tolist())  # 8, 7, 6, 5: indices 4, 2, 6, 0
    assert torch.equal(kept, original[expected])
    assert pruned[3].weight.shape[1] == 4  # the next layer lost the kernels that read them
    assert pruned(torch.zeros(2, 3, 8, 8)).shape == (2, 4)


def test_l1_on_resnet20_keeps_each_layers_largest_filters_at_the_ratio():
    torch.manual_seed(0)
    dense = create("resnet20", 10)
    original = {name: module.weight.detach().clone() for name, module in prunable_modules(dense)}
    pruned = finalized("l1_filters", copy.deepcopy(dense), prune_ratio=0.5)
    facts = layer_facts(pruned, SHAPE)
    shrunk = 0
    for name, module in prunable_modules(pruned):
        before, after = original[name], module.weight.detach()
        if after.shape[0] == before.shape[0]:
            continue  # residual-coupled layers and the classifier keep every output (Li et al. Sec. 4.2)
        shrunk += 1
        assert after.shape[0] == before.shape[0] - round(0.5 * before.shape[0])
        norms = before.abs().flatten(1).sum(1)
        largest = sorted(torch.topk(norms, after.shape[0]).indices.tolist())
        assert after.shape[1] == before.shape[1] and torch.equal(after, before[largest])  # the block input is not pruned
        assert facts[name]["out_channels"] == after.shape[0]
    assert shrunk == 9  # the first conv of each of the nine basic blocks
    assert pruned(torch.zeros(2, *SHAPE)).shape == (2, 10)


def test_random_channels_removes_as_many_channels_as_l1_but_others_and_per_seed():
    torch.manual_seed(0)
    dense = create("resnet20", 10)
    widths = lambda model: [f["out_channels"] for f in layer_facts(model, SHAPE).values()]  # noqa: E731
    l1 = finalized("l1_filters", copy.deepcopy(dense), prune_ratio=0.5)
    first = finalized("random_channels", copy.deepcopy(dense), seed=0, prune_ratio=0.5)
    again = finalized("random_channels", copy.deepcopy(dense), seed=0, prune_ratio=0.5)
    other = finalized("random_channels", copy.deepcopy(dense), seed=1, prune_ratio=0.5)
    assert widths(first) == widths(other) == widths(l1)
    conv = lambda model: model.layer1[0].conv1.weight  # noqa: E731
    assert torch.equal(conv(first), conv(again))
    assert not torch.equal(conv(first), conv(other)) and not torch.equal(conv(first), conv(l1))


@pytest.mark.parametrize("name", ["random_channels", "l1_filters"])
def test_match_takes_another_runs_widths_residual_layers_included(name, tmp_path):
    torch.manual_seed(0)
    dense = create("resnet20", 10)
    source = finalized("l1_filters", copy.deepcopy(dense), prune_ratio=0.4, prune_residual=True)  # a structured run's widths
    run_id = write_source(tmp_path, "unit", dense, source, SHAPE, method="ns")
    method = methods.create(name, match=run_id)
    method.read_runs(SourceRuns(Storage(str(tmp_path)), "unit", "resnet20", "digits"))
    method.setup(None, 0, 1, SHAPE)
    model = copy.deepcopy(dense)
    method.check_model(model)
    pruned = method.finalize(model)
    widths = lambda model: {layer: f["out_channels"] for layer, f in layer_facts(model, SHAPE).items()}  # noqa: E731
    assert widths(pruned) == widths(source)
    assert layer_facts(pruned, SHAPE)["layer1.0.conv2"]["out_channels"] < 16  # a residual width, matched
