"""Shared structured helpers: BN-scale L1, channel removal by voting keep masks through DepGraph
(coupled residual channels, protected classifier, exactness), residual branch discovery and removal."""

import copy

from support import fidelity
import pytest
import torch
from torch import nn

from prunebench.core.errors import UserError
from prunebench import methods
from prunebench.harness import models
from prunebench.harness.models import CifarDenseNet, CifarResNet
from prunebench.methods.channels import (
    Branch,
    ConstantBranch,
    ChannelGraph,
    ZeroBranch,
    batchnorms,
    branches_to_remove,
    ensure_one,
    gamma_l1,
    remove_branches,
)  # fmt: skip

SHAPE = (3, 16, 16)


def resnet8() -> nn.Module:
    """CIFAR ResNet with one block per stage: layer1 has an identity shortcut, layer2/3 a 1x1 projection."""
    torch.manual_seed(0)
    return CifarResNet(8, num_classes=10).eval()


def all_kept(model: nn.Module) -> dict[nn.Module, torch.Tensor]:
    return {bn: torch.ones(bn.num_features, dtype=torch.bool) for bn in batchnorms(model)}


def test_gamma_l1_is_the_sum_of_absolute_scales():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -1.5]))
        model[3].weight.copy_(torch.tensor([0.0, 2.0, -0.25]))
    assert float(gamma_l1(model).detach()) == pytest.approx(4.25)


def test_ensure_one_keeps_the_best_channel_only_when_all_would_go():
    scores = torch.tensor([0.1, 0.7, 0.3])
    assert ensure_one(torch.tensor([False, False, False]), scores).tolist() == [False, True, False]
    assert ensure_one(torch.tensor([True, False, False]), scores).tolist() == [True, False, False]


def test_coupled_channel_goes_only_when_every_bn_of_the_group_marks_it():
    model = resnet8()
    keep = all_kept(model)
    keep[model.bn1] = torch.tensor([i not in (0, 1) for i in range(16)])  # stem BN: 0, 1 removable
    keep[model.layer1[0].bn2] = torch.tensor([i not in (1, 2) for i in range(16)])  # tied by the add: 1, 2
    keep[model.layer1[0].bn1] = torch.tensor([i not in (3, 4, 5) for i in range(16)])  # internal channels
    ChannelGraph(model, SHAPE).prune_channels(keep)
    block = model.layer1[0]
    assert model.conv1.out_channels == 15 and block.conv2.out_channels == 15  # only channel 1 is removable everywhere
    assert model.layer2[0].conv1.in_channels == 15 and model.layer2[0].shortcut[0].in_channels == 15
    assert block.conv1.out_channels == 13 and block.bn1.num_features == 13 and block.conv2.in_channels == 13
    assert model(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_removing_dead_channels_keeps_the_function_exactly():
    """Channels with gamma = beta = 0 output relu(0) = 0: removing them must not change the output."""
    model = resnet8()
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        bn = model.layer2[0].bn1
        bn.weight[[0, 7, 9]] = 0.0
        bn.bias[[0, 7, 9]] = 0.0
    keep = all_kept(model)
    keep[bn] = bn.weight.detach() != 0
    reference = copy.deepcopy(model)
    x = torch.randn(4, *SHAPE)
    ChannelGraph(model, SHAPE).prune_channels(keep)
    assert model.layer2[0].conv2.in_channels == 29
    torch.testing.assert_close(model(x), reference(x))


def test_classifier_outputs_are_never_pruned():
    """A BN on the class channels votes to drop some; the classes stay."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 10, 1), nn.BatchNorm2d(10), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    ).eval()  # fmt: skip
    keep = {model[1]: torch.arange(8) < 4, model[4]: torch.arange(10) < 3}
    ChannelGraph(model, SHAPE).prune_channels(keep)
    assert model[0].out_channels == 4 and model[3].in_channels == 4
    assert model[3].out_channels == 10 and model[4].num_features == 10


def test_a_conv_whose_every_output_is_marked_keeps_its_strongest_one():
    """In a DenseNet a conv's outputs are a slice of the next BN: marking the whole slice must not
    leave a conv with no output channel (it would not run); the channel with the largest scale stays."""
    torch.manual_seed(0)
    model = CifarDenseNet(7, 12, num_classes=10).eval()  # one dense layer per block
    bn = model.transition1.bn  # 16 stem channels, then the 12 of block1[0].conv
    with torch.no_grad():
        bn.weight[16:28] = torch.linspace(0.01, 0.12, 12)
        bn.weight[21] = 0.5
    keep = all_kept(model)
    keep[bn] = torch.arange(28) < 16
    ChannelGraph(model, SHAPE).prune_channels(keep)
    assert model.block1[0].conv.out_channels == 1 and bn.num_features == 17
    assert bn.weight[16].item() == 0.5
    assert model(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_residual_adds_lists_branches_from_the_add_backwards():
    adds = ChannelGraph(resnet8(), SHAPE).residual_adds()
    as_sets = [{branch.layers if branch else None for branch in inputs} for inputs in adds]
    assert {("layer1.0.bn2", "layer1.0.conv2", "layer1.0.bn1", "layer1.0.conv1"), None} in as_sets  # identity shortcut: None
    assert {
        ("layer2.0.bn2", "layer2.0.conv2", "layer2.0.bn1", "layer2.0.conv1"),
        ("layer2.0.shortcut.1", "layer2.0.shortcut.0"),
    } in as_sets
    assert len(adds) == 3


def test_an_add_always_keeps_one_input():
    a, b, c = Branch(("a",)), Branch(("b",)), Branch(("c",))
    importance = {a: 1.0, b: 2.0, c: 0.5}.get
    assert branches_to_remove([[a, b]], lambda branch: True, importance) == [a]
    assert branches_to_remove([[a, None]], lambda branch: True, importance) == [a]
    assert branches_to_remove([[a, c], [b, None]], lambda branch: branch is not a, importance) == [c, b]


def test_removed_branch_leaves_only_the_shortcut():
    model = resnet8()
    (branch,) = [b for inputs in ChannelGraph(model, SHAPE).residual_adds() for b in inputs if b and b.layers[0] == "layer1.0.bn2"]
    remove_branches(model, [branch], SHAPE)
    block = model.layer1[0]
    assert all(isinstance(getattr(block, name), ZeroBranch) for name in ("conv1", "bn1", "conv2", "bn2"))
    x = torch.relu(torch.randn(2, 16, 16, 16))
    torch.testing.assert_close(block(x), x)  # relu(0 + identity) of a post-ReLU input
    assert model(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_removed_input_independent_branches_keep_their_output():
    """A zero last conv leaves bn2's shift (per channel); a zero first conv leaves what bn1's
    shift becomes through relu, conv2 and bn2, a spatial map (zero padding at the borders)."""
    model = resnet8()
    with torch.no_grad():
        model.layer1[0].conv2.weight.zero_()
        model.layer2[0].conv1.weight.zero_()
    fidelity.randomize_batchnorms(model, torch.Generator().manual_seed(0))
    reference = copy.deepcopy(model)
    branches = [b for inputs in ChannelGraph(model, SHAPE).residual_adds() for b in inputs if b and b.layers[0] in ("layer1.0.bn2", "layer2.0.bn2")]
    remove_branches(model, branches, SHAPE, keep_constant=True)
    for block, value_shape in ((model.layer1[0], (16, 1, 1)), (model.layer2[0], (32, 8, 8))):
        assert all(isinstance(getattr(block, name), ZeroBranch) for name in ("conv1", "bn1", "conv2"))
        assert isinstance(block.bn2, ConstantBranch) and tuple(block.bn2.value.shape) == value_shape
    x = torch.randn(2, *SHAPE)
    torch.testing.assert_close(model(x), reference(x), rtol=1e-6, atol=1e-6)
    out = model.layer2[0].bn2(x)
    out += 1.0  # blocks add the shortcut in place (torchvision's `out += identity`): the constant stays
    torch.testing.assert_close(model.layer2[0].bn2(x), out - 1.0)


def test_coupled_channels_groups_the_channels_of_every_bn_feeding_one_add():
    model = resnet8()
    names = {module: name for name, module in model.named_modules()}
    groups = ChannelGraph(model, SHAPE).coupled_channels()
    as_names = [sorted((names[bn], channel) for bn, channel in group) for group in groups]
    assert [("bn1", 3), ("layer1.0.bn2", 3)] in as_names  # stage 1: the stem and the block output, tied by the identity add
    assert [("layer2.0.bn2", 5), ("layer2.0.shortcut.1", 5)] in as_names  # stage 2: the block output and the projection
    assert [("layer2.0.bn1", 7)] in as_names  # inside a block: alone
    channels = [channel for group in groups for channel in group]
    assert len(channels) == len(set(channels)) == sum(bn.num_features for bn in batchnorms(model))  # each once


def test_residual_batchnorms_are_those_whose_output_reaches_an_add():
    model = resnet8()
    names = {module: name for name, module in model.named_modules()}
    found = sorted(names[bn] for bn in ChannelGraph(model, SHAPE).residual_batchnorms())
    # the stem BN reaches layer1's add through its ReLU; block outputs and projection BNs feed adds directly
    assert found == ["bn1", "layer1.0.bn2", "layer2.0.bn2", "layer2.0.shortcut.1", "layer3.0.bn2", "layer3.0.shortcut.1"]
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 1), nn.BatchNorm2d(5), nn.Flatten())
    assert ChannelGraph(plain.eval(), SHAPE).residual_batchnorms() == set()


@pytest.mark.parametrize("name", ["ns", "ot", "psp"])
def test_structured_methods_refuse_layers_that_split_channels_by_fixed_sizes(name):
    """MixNet's mixed convolutions split their input by stored sizes that channel removal does not
    update (the pruned model would not run): refused before training, naming the layer."""
    with pytest.raises(UserError, match=r"^method '" + name + r"': layer blocks\.\S+ splits its channels by fixed sizes"):
        methods.create(name).check_model(models.create("mixnet_s", 10))
    methods.create(name).check_model(models.create("resnet20", 10))  # no split: accepted
