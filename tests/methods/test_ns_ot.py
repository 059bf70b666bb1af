"""NS and OT against their papers: thresholds on hand-made scale sets (expected values worked out
by hand in the comments), the L1 penalty, physical removal on CIFAR ResNets, OT branch removal,
and the one-line errors for unusable models and hyper-parameters."""

import copy

import pytest
import torch
from torch import nn

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.metrics import count_macs
from prunebench.harness import models
from prunebench.harness.models import CifarResNet
from prunebench.methods.channels import ZeroBranch, batchnorms, is_scaled_batchnorm
from prunebench.methods.ns import slimming_masks
from prunebench.methods.ot import optimal_threshold

SHAPE = (3, 16, 16)


def attached(name: str, model: nn.Module, **hparams) -> methods.PruningMethod:
    method = methods.create(name, gamma_init=None, **hparams)
    method.setup(None, 1, 1, SHAPE)
    method.attach(model)
    return method


def set_gammas(model: nn.Module, value: float, **special: torch.Tensor) -> None:
    """Every BN scale to `value`, then the named BN layers to the given scales."""
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.weight.fill_(value)
        for name, gammas in special.items():
            model.get_submodule(name.replace("__", ".")).weight.copy_(gammas)


# --- NS: smallest groups of coupled scales first, to the requested share --------------------


def flat_groups(*layers: nn.Module) -> list[list[tuple[nn.Module, int]]]:
    """Every channel its own group, as in a network without residual adds."""
    return [[(bn, channel)] for bn in layers for channel in range(bn.num_features)]


def batchnorm_with(gammas: list[float]) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(len(gammas))
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gammas))
    return bn


def test_ns_prunes_the_requested_share_of_smallest_scales():
    bn = batchnorm_with([0.1, -0.5, 0.3, 0.05, 0.9, 0.2, 0.7, -0.4, 0.6, 0.8])
    # |gamma| ascending: .05 .1 .2 .3 .4 .5 ...; 30% of 10 = 3 -> .05 .1 .2 go
    assert slimming_masks([bn], flat_groups(bn), 0.3)[bn].tolist() == [False, True, True, False, True, False, True, True, True, True]
    assert slimming_masks([bn], flat_groups(bn), 0.0)[bn].all()
    # 0.96 of 10 rounds to 10, but the layer keeps its largest scale (.9, index 4)
    assert slimming_masks([bn], flat_groups(bn), 0.96)[bn].tolist() == [i == 4 for i in range(10)]


def test_ns_makes_up_for_a_layer_it_must_keep_one_channel_of():
    layer_a, layer_b = batchnorm_with([0.01, 0.02, 0.03, 0.04]), batchnorm_with([0.5, 0.6, 0.7, 0.8])
    # 50% of 8 = 4: .01 .02 .03 go, .04 would empty layer_a and stays, so .5 of layer_b is the fourth
    keep = slimming_masks([layer_a, layer_b], flat_groups(layer_a, layer_b), 0.5)
    assert keep[layer_a].tolist() == [False, False, False, True] and keep[layer_b].tolist() == [False, True, True, True]


def test_ns_scores_a_coupled_group_by_its_largest_scale_and_counts_every_channel():
    a, b = batchnorm_with([0.01, 0.2, 0.3, 0.95]), batchnorm_with([0.5, 0.1, 0.4, 0.8])
    groups = [[(a, 0), (b, 0)]] + [[(bn, i)] for bn in (a, b) for i in (1, 2, 3)]
    # scores: b1 .1, a1 .2, a2 .3, b2 .4, (a0, b0) max .5 (mean .255 would put it third), b3 .8, a3 .95
    keep = slimming_masks([a, b], groups, 0.5)  # 4 of 8: b1 a1 a2 b2; the coupled pair stays despite a0 = .01
    assert keep[a].tolist() == [True, False, False, True] and keep[b].tolist() == [True, False, False, True]
    keep = slimming_masks([a, b], groups, 5 / 8)  # 5 of 8: the pair is next and counts 2, so 6 go
    assert keep[a].tolist() == [False, False, False, True] and keep[b].tolist() == [False, False, False, True]


def bn_channels(model: nn.Module) -> int:
    return sum(bn.num_features for bn in batchnorms(model))


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("name", ["resnet20", "resnet56", "vgg14_bn"])
def test_ns_removes_the_requested_share_of_bn_channels(name, ratio):
    """Residual adds couple channels; the realized share must still be the ratio."""
    torch.manual_seed(0)
    model = models.create(name, 10).eval()
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.weight.uniform_(0.0, 1.0)
    total = bn_channels(model)
    pruned = attached("ns", model, prune_ratio=ratio).finalize(model)
    assert abs((total - bn_channels(pruned)) / total - ratio) <= 0.02
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_l1_penalty_and_its_subgradient():
    model = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3))
    method = attached("ns", model, lam=1e-2)
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -2.0, 1.5]))
    penalty = method.penalty(model)
    penalty.backward()
    assert float(penalty.detach()) == pytest.approx(1e-2 * 4.0)
    torch.testing.assert_close(model[1].weight.grad, 1e-2 * torch.tensor([1.0, -1.0, 1.0]))


def test_gamma_init_sets_every_scale_at_attach():
    model = CifarResNet(8, 10)
    method = methods.create("ns")
    method.setup(None, 1, 1, SHAPE)
    method.attach(model)
    assert all(bool((bn.weight == 0.5).all()) for bn in batchnorms(model))


def test_ns_removes_the_hand_picked_channels_of_resnet20():
    torch.manual_seed(0)
    model = models.create("resnet20", 10).eval()
    small = torch.cat([torch.full((60,), 0.01), torch.ones(4)])
    set_gammas(model, 1.0, layer3__0__bn1=small)
    total = sum(bn.num_features for bn in batchnorms(model))
    method = attached("ns", model, prune_ratio=60 / total)  # rank 60 is the first 1.0: exactly the 60 small scales go
    pruned = method.finalize(model)
    assert pruned.layer3[0].conv1.out_channels == 4 and pruned.layer3[0].conv2.in_channels == 4
    assert sum(bn.num_features for bn in batchnorms(pruned)) == total - 60


def test_ns_keeps_one_channel_of_a_layer_entirely_below_the_threshold():
    model = models.create("resnet20", 10).eval()
    set_gammas(model, 1.0, layer3__0__bn1=torch.linspace(0.001, 0.01, 64))
    total = sum(bn.num_features for bn in batchnorms(model))
    pruned = attached("ns", model, prune_ratio=64 / total).finalize(model)
    assert pruned.layer3[0].conv1.out_channels == 1
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)


def bn_widths(name: str, model: nn.Module, **hparams) -> list[int]:
    """Channels of each BN layer after method `name` finalizes a copy of `model`."""
    model = copy.deepcopy(model)
    return [bn.num_features for bn in batchnorms(attached(name, model, **hparams).finalize(model))]


def test_vgg14_at_0_8_ns_holds_a_layer_that_its_global_threshold_empties_at_one_channel_ot_keeps_it():
    """OT Sec. III-B and IV-D: at high ratios NS's single global threshold empties whole layers of
    VGG-14, OT's per-layer thresholds do not. Scales of the shape that produces it (the deep
    512-wide layers far below the others): the last three BN layers 100x smaller. NS at 0.8 removes them first and, by its keep-one rule, keeps one channel
    of each; OT keeps almost all of every layer."""
    torch.manual_seed(0)
    model = models.create("vgg14_bn", 10).eval()
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.weight.uniform_(0.5, 1.5)
        for bn in batchnorms(model)[-3:]:
            bn.weight.mul_(0.01)
    dense = [bn.num_features for bn in batchnorms(model)]
    scales = torch.cat([bn.weight.detach().abs() for bn in batchnorms(model)])
    global_threshold = float(scales.sort().values[round(0.8 * scales.numel()) - 1])
    emptied = [i for i, bn in enumerate(batchnorms(model)) if bool((bn.weight.detach().abs() <= global_threshold).all())]
    assert emptied == [10, 11, 12]  # a plain 80th-percentile threshold leaves these layers no channel
    ns, ot = bn_widths("ns", model, prune_ratio=0.8), bn_widths("ot", model)
    assert [ns[i] for i in emptied] == [1, 1, 1] and abs(1 - sum(ns) / sum(dense) - 0.8) <= 0.01
    assert all(width >= 0.95 * full for width, full in zip(ot, dense)), (ot, dense)


def test_ns_leaves_a_runnable_resnet20_with_fewer_macs():
    torch.manual_seed(0)
    model = models.create("resnet20", 10).eval()
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.weight.uniform_(0.0, 1.0)
    dense_macs = count_macs(model, SHAPE)
    pruned = attached("ns", model, prune_ratio=0.5).finalize(model)
    assert count_macs(pruned, SHAPE) < 0.7 * dense_macs
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10) and pruned.fc.out_features == 10
    assert all(bn.num_features >= 1 for bn in batchnorms(pruned))


# --- OT: eq. 5 ---------------------------------------------------------------------------------


def test_ot_threshold_hand_computed():
    gammas = torch.tensor([0.001, -0.002, 0.5, 0.8, 1.0, -0.003])
    # squares ascending: 1e-6 4e-6 9e-6 .25 .64 1; zeta = 1.890014, delta * zeta = 1.89e-3;
    # cumulative: 1e-6 5e-6 1.4e-5 (all < 1.89e-3) then .250014 >= 1.89e-3 -> threshold 0.5
    threshold = optimal_threshold(gammas)
    assert threshold == pytest.approx(0.5)
    assert (gammas.abs() < threshold).tolist() == [True, True, False, False, False, True]


def test_ot_threshold_reaching_delta_zeta_exactly_counts():
    # squares 9 16 25, zeta 50, delta 0.5 -> 25. Eq. 5 for gamma' = 4: the squares below it sum to
    # 9 < 25 and 16 + 9 = 25 >= 25, so 4 is the threshold (a strict ">" would give 5)
    assert optimal_threshold(torch.tensor([5.0, 3.0, 4.0]), delta=0.5) == 4.0


def test_ot_threshold_of_equal_or_zero_scales_prunes_nothing():
    assert optimal_threshold(torch.tensor([0.7, 0.7, 0.7])) == pytest.approx(0.7)
    assert optimal_threshold(torch.zeros(3)) == 0.0


def test_ot_prunes_per_layer_and_removes_a_branch_below_the_global_threshold():
    torch.manual_seed(0)
    model = CifarResNet(8, 10).eval()
    dense_macs = count_macs(model, SHAPE)
    set_gammas(
        model, 1.0,
        layer1__0__bn2=torch.full((16,), 1e-3),  # the whole branch is below the global threshold
        layer3__0__bn1=torch.cat([torch.full((60,), 1e-3), torch.ones(4)]),  # layer threshold 1.0
    )  # fmt: skip
    # global: 76 tiny squares sum to 7.6e-5, far below 1e-3 * zeta (zeta = 260.000076), so the global threshold is 1.0
    pruned = attached("ot", model).finalize(model)
    block = pruned.layer1[0]
    assert all(isinstance(getattr(block, name), ZeroBranch) for name in ("conv1", "bn1", "conv2", "bn2"))
    assert isinstance(pruned.layer3[0].conv1, nn.Conv2d) and pruned.layer3[0].conv1.out_channels == 4
    assert isinstance(pruned.layer2[0].conv1, nn.Conv2d) and pruned.layer2[0].conv1.out_channels == 32  # nothing else goes
    assert count_macs(pruned, SHAPE) < dense_macs
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_ot_keeps_one_input_of_a_downsampling_add():
    model = CifarResNet(8, 10).eval()
    set_gammas(model, 1.0, layer2__0__bn2=torch.full((32,), 1e-3), layer2__0__shortcut__1=torch.full((32,), 2e-3))
    pruned = attached("ot", model).finalize(model)
    assert isinstance(pruned.layer2[0].conv2, ZeroBranch)  # the weaker branch goes
    assert isinstance(pruned.layer2[0].shortcut[0], nn.Conv2d)  # the projection shortcut stays
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_ot_keeps_a_branch_with_one_scale_above_the_global_threshold():
    model = CifarResNet(8, 10).eval()
    set_gammas(model, 1.0, layer1__0__bn2=torch.cat([torch.full((15,), 1e-3), torch.ones(1)]))
    pruned = attached("ot", model).finalize(model)
    assert isinstance(pruned.layer1[0].bn2, nn.BatchNorm2d)


def test_ot_without_branch_removal_keeps_every_block():
    model = CifarResNet(8, 10).eval()
    set_gammas(model, 1.0, layer1__0__bn2=torch.full((16,), 1e-3))
    pruned = attached("ot", model, branch_removal=False).finalize(model)
    assert isinstance(pruned.layer1[0].bn2, nn.BatchNorm2d)


def log_uniform_scales(model: nn.Module, low: float = -3.0) -> None:
    """Scales spread over decades, as after sparsity training, so eq. 5 prunes in every layer."""
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.weight.copy_(10 ** torch.empty(bn.num_features).uniform_(low, 0.0))


def scales_by_name(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: module.weight.detach().clone() for name, module in model.named_modules() if is_scaled_batchnorm(module)}


# every BN of resnet20 whose output reaches an add: the stem (through its ReLU), each block's output, the projections
RESNET20_RESIDUAL = ["bn1", *(f"layer{stage}.{block}.bn2" for stage in (1, 2, 3) for block in range(3)), "layer2.0.shortcut.1", "layer3.0.shortcut.1"]


def test_ot_by_default_never_prunes_a_bn_feeding_a_residual_add():
    """The authors' rule: residual BNs keep every channel; every other BN is cut at its eq. 5 threshold."""
    torch.manual_seed(0)
    model = models.create("resnet20", 10).eval()
    log_uniform_scales(model)
    before = scales_by_name(model)
    pruned = attached("ot", model).finalize(model)
    after = scales_by_name(pruned)
    assert not any(isinstance(module, ZeroBranch) for module in pruned.modules())  # only channel pruning at work here
    for name in RESNET20_RESIDUAL:
        assert torch.equal(after[name], before[name]), name
    inner = [name for name in before if name not in RESNET20_RESIDUAL]
    assert len(inner) == 9  # one bn1 per block
    for name in inner:
        gammas = before[name]
        assert torch.equal(after[name], gammas[gammas.abs() >= optimal_threshold(gammas)]), name
    assert sum(after[name].numel() for name in inner) < 0.9 * sum(before[name].numel() for name in inner)
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)


def test_ot_vote_removes_a_coupled_channel_that_every_bn_of_its_group_puts_below_its_threshold():
    tiny_first = torch.cat([torch.full((1,), 1e-3), torch.ones(15)])  # layer threshold 1.0 (1e-6 < 1e-3 * 15.000001)
    for residual, kept in (("authors", 16), ("vote", 15)):
        model = CifarResNet(8, 10).eval()
        set_gammas(model, 1.0, bn1=tiny_first, layer1__0__bn2=tiny_first)  # stage 1's group: the stem and the block output
        pruned = attached("ot", model, residual=residual).finalize(model)
        assert (pruned.bn1.num_features, pruned.layer1[0].bn2.num_features) == (kept, kept), residual


# --- removing a channel is zeroing its BN scale and shift ----------------------------------------


def randomize_batchnorms(model: nn.Module) -> None:
    """Shifts and running statistics away from their init, so that a channel's shift matters."""
    with torch.no_grad():
        for bn in batchnorms(model):
            bn.bias.normal_(0.0, 0.5)
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)


def zeroed_like(original: nn.Module, pruned: nn.Module, shift: bool = True) -> nn.Module:
    """`original` with gamma (and beta, if `shift`) set to 0 on every BN channel `pruned` no longer has.
    Channels are matched by their scales, all distinct; a BN replaced by a ZeroBranch has lost all."""
    reference, survivors = copy.deepcopy(original), dict(pruned.named_modules())
    with torch.no_grad():
        for name, bn in reference.named_modules():
            if is_scaled_batchnorm(bn):
                survivor = survivors[name]
                gone = ~torch.isin(bn.weight, survivor.weight) if is_scaled_batchnorm(survivor) else torch.ones_like(bn.weight, dtype=torch.bool)
                bn.weight[gone] = 0.0
                if shift:
                    bn.bias[gone] = 0.0
    return reference


def max_relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("model_name", ["resnet20", "vgg14_bn"])
@pytest.mark.parametrize("name", ["ns", "ot"])
def test_removing_channels_equals_zeroing_their_scale_and_shift(name, model_name):
    torch.manual_seed(0)
    model = models.create(model_name, 10).eval()
    log_uniform_scales(model)
    randomize_batchnorms(model)
    if model_name == "resnet20":  # a branch entirely below the global OT threshold: OT replaces it by zeros
        with torch.no_grad():
            model.layer2[1].bn2.weight.copy_(torch.linspace(1e-5, 1e-4, 32))
    original = copy.deepcopy(model)
    pruned = attached(name, model, **({"prune_ratio": 0.5} if name == "ns" else {})).finalize(model)
    assert bn_channels(pruned) < bn_channels(original)
    x = torch.randn(8, *SHAPE)
    with torch.no_grad():
        out = pruned(x)
        assert max_relative_difference(out, zeroed_like(original, pruned)(x)) <= 1e-5
        assert max_relative_difference(out, zeroed_like(original, pruned, shift=False)(x)) > 1e-3  # the shift is not negligible here


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ns", "ot"])
def test_model_without_batchnorm_is_a_user_error_naming_the_method(name):
    model = models.create("lenet_300_100", 10, 1, 8)
    with pytest.raises(UserError, match=f"method '{name}': model has no BatchNorm layers to prune"):
        methods.create(name).check_model(model)


@pytest.mark.parametrize(
    ("name", "hparams", "field"),
    [
        ("ns", {"lam": -1e-5}, "lam"), ("ns", {"prune_ratio": 1.0}, "prune_ratio"), ("ns", {"prune_ratio": -0.1}, "prune_ratio"),
        ("ot", {"delta": 0.0}, "delta"), ("ot", {"lamda": 1}, "lamda"), ("ot", {"residual": "mask"}, "residual"),
    ],
)  # fmt: skip
def test_bad_hparams_are_user_errors(name, hparams, field):
    with pytest.raises(UserError, match=f"method '{name}': hparams.{field}") as error:
        methods.create(name, **hparams)
    assert "\n" not in str(error.value)
