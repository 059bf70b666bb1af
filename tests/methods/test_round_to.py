"""`round_to` of NS, OT and PSP: every kept width rounded up to a multiple of N by importance,
the coupled layers of a residual add at one width, no layer emptied, and the option off by
default; through the command, the record's `layers` show the rounded widths and a bad value is
one line naming the field."""

import copy
import functools
import json

import pytest
import torch
from support.cli import REPO, assert_one_line_error, run_main
from torch import nn

from prunebench import methods
from prunebench.core.metrics import layer_facts
from prunebench.methods import channels
from prunebench.harness import models

SHAPE = (3, 16, 16)
METHODS = {  # name -> hyper-parameters that make it remove channels on random scales
    "ns": {"prune_ratio": 0.5},
    "ot": {"delta": 0.2},  # residual BNs stay whole (the default, as the authors' code)
    "ot-vote": {"delta": 0.2, "residual": "vote"},
    "psp": {"granularity": "channel"},
}


def randomized(label: str, model_name: str, round_to: int | None, seed: int = 0) -> tuple[methods.PruningMethod, nn.Module]:
    """The method attached to a fresh model whose channel scores are random: BN scales uniform in
    [0, 1] for NS and OT; for PSP half the alphas below epsilon, the others in [1, 2]."""
    torch.manual_seed(seed)
    model = models.create(model_name, 10)
    name = label.split("-")[0]
    method = methods.create(name, round_to=round_to, **METHODS[label])
    method.setup(None, 1, 1, SHAPE)
    method.attach(model)
    with torch.no_grad():
        if name == "psp":
            for alpha in method.structure_parameters(model):
                pruned = torch.rand(alpha.shape) < 0.5
                alpha.copy_(torch.where(pruned, 0.1 * torch.rand(alpha.shape), 1 + torch.rand(alpha.shape)))
        else:
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.weight.uniform_(0, 1)
    return method, model


def conv_widths(model: nn.Module) -> dict[str, int]:
    """out_channels of every conv layer as the record's `layers` count them."""
    return {name: facts["out_channels"] for name, facts in layer_facts(model, SHAPE).items() if facts["kind"] == "conv"}


@functools.cache
def finalized(label: str, model_name: str, round_to: int | None) -> nn.Module:
    """The randomized model finalized (cached: tracing dominates these tests; callers only read it)."""
    method, model = randomized(label, model_name, round_to)
    return method.finalize(model)


def finalized_widths(label: str, model_name: str, round_to: int | None) -> dict[str, int]:
    return conv_widths(finalized(label, model_name, round_to))


CASES = [(label, "resnet20") for label in METHODS] + [("ns", "vgg14_bn"), ("ot", "vgg14_bn"), ("psp", "vgg14_bn")]  # no adds: OT's vote is OT


@pytest.mark.parametrize(("label", "model_name"), CASES, ids=[f"{label}-{model}" for label, model in CASES])
def test_kept_widths_are_rounded_up_to_a_multiple(label, model_name):
    """Each layer keeps the width it had without rounding, rounded up to a multiple of 8 (its
    dense width where that is smaller); a layer the method left without rounding is unchanged."""
    dense = conv_widths(models.create(model_name, 10))
    plain = finalized_widths(label, model_name, None)
    rounded = finalized_widths(label, model_name, 8)
    assert any(plain[name] % 8 for name in plain), "nothing to round: the scores must leave odd widths"
    for name, width in plain.items():
        expected = 0 if width == 0 else min(dense[name], -(-width // 8) * 8)  # 0: a removed branch's layer
        assert rounded[name] == expected, (name, width, rounded[name])
    assert all(rounded[name] > 0 for name, width in plain.items() if width > 0)  # no layer emptied


def test_a_width_that_would_pass_the_dense_width_keeps_the_dense_width():
    """round_to 32 on ResNet-20: the 16-channel stage stays whole, the others are multiples of 32."""
    dense = conv_widths(models.create("resnet20", 10))
    rounded = finalized_widths("ns", "resnet20", 32)
    assert all(width % 32 == 0 or width == dense[name] for name, width in rounded.items())
    assert {rounded[name] for name in rounded if dense[name] == 16} == {16}
    assert any(width < dense[name] for name, width in rounded.items())


def test_off_by_default_and_at_one():
    assert all(methods.create(name).hparams.round_to is None for name in ("ns", "ot", "psp"))
    assert finalized_widths("ns", "resnet20", 1) == finalized_widths("ns", "resnet20", None)


def test_ns_keeps_back_the_largest_scales():
    """In a plain conv-BN group (a block's first BN), NS's kept channels plus those rounding keeps
    back are the layer's largest |gamma|s."""
    method, model = randomized("ns", "resnet20", 8)
    gammas = model.layer2[1].bn1.weight.detach().abs().clone()
    pruned = method.finalize(model)
    kept = pruned.layer2[1].bn1.weight.detach().abs()
    assert kept.numel() % 8 == 0 and kept.numel() < gammas.numel()
    torch.testing.assert_close(kept.sort().values, gammas.sort().values[-kept.numel() :])


def test_psp_keeps_back_the_strongest_channels_with_their_unthresholded_weights():
    """A channel kept back for rounding is read with w * alpha (what the threshold had zeroed), so
    the layer reading it uses every channel it keeps; the ones kept back are the removed channels
    with the largest sum |w * alpha|."""
    method, model = randomized("psp", "resnet20", 8)
    conv = model.layer1[1].conv2
    raw = (conv.parametrizations.weight.original * conv.parametrizations.weight[0].alpha).detach().clone()
    above = conv.parametrizations.weight[0].alpha.detach().abs().flatten() >= method.hparams.epsilon
    usage = raw.abs().transpose(0, 1).flatten(1).sum(1)
    width = -(-int(above.sum()) // 8) * 8
    removed = (~above).nonzero().flatten()
    back = removed[usage[removed].argsort(descending=True)[: width - int(above.sum())]]
    channels = sorted(above.nonzero().flatten().tolist() + back.tolist())
    pruned = method.finalize(model)
    torch.testing.assert_close(pruned.layer1[1].conv2.weight, raw[:, channels])
    assert pruned.layer1[1].conv1.out_channels == width


def test_residual_coupled_layers_share_one_rounded_width():
    """OT's vote and NS remove a residual channel from every BN of the add at once; the rounded
    stage widths are one multiple of 8 for every conv feeding the stage's adds."""
    for label in ("ns", "ot-vote"):
        pruned = finalized(label, "resnet20", 8)
        for stage in (pruned.layer1, pruned.layer2, pruned.layer3):
            widths = {block.bn2.num_features for block in stage if isinstance(block.bn2, nn.BatchNorm2d)}
            assert len(widths) == 1 and widths.pop() % 8 == 0, (label, widths)
        with torch.no_grad():
            pruned.eval()(torch.randn(2, *SHAPE))  # the adds still line up


@pytest.mark.parametrize("label", ["ns", "ot", "psp"])
def test_a_finalize_traces_the_model_once(label, monkeypatch):
    """Tracing is the slow part of a finalize (DenseNets): NS, OT and PSP ask every question of
    one ChannelGraph (coupled channels, residual BNs and adds, removal, rounding), with and
    without round_to."""
    traces = {}
    build = channels.build_graph
    for round_to in (None, 8):
        method, model = randomized(label, "resnet20", round_to)
        count = traces.setdefault(round_to, [])
        monkeypatch.setattr(channels, "build_graph", lambda *args, count=count: count.append(1) or build(*args))
        method.finalize(model)
    assert traces == {None: [1], 8: [1]}, traces


def test_snapshot_leaves_the_attached_model_alone():
    method, model = randomized("psp", "resnet20", 8)
    before = copy.deepcopy(model.state_dict())
    method.snapshot(model)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[key], after[key]) for key in before)


# --- through the command ----------------------------------------------------------------------

QUICK = ["phases.prune=1", "phases.finetune.epochs=0", "data.image_size=8", "data.batch_size=128", "threads=1"]
RUNS = {"ns": [], "ot": ["method.hparams.delta=0.2"], "psp": ["method.hparams.granularity=channel"]}


@pytest.mark.parametrize("name", list(RUNS))
def test_round_to_8_shows_in_the_records_layers(name, tmp_path):
    """`--set method.hparams.round_to=8` on the smoke config (one short prune epoch at 8x8
    inputs): every conv keeps a multiple of 8 channels and at least one lost channels."""
    overrides = [*QUICK, *RUNS[name], "method.hparams.round_to=8"]
    args = ["run", str(REPO / "configs" / "smoke" / f"{name}.yaml"), "--out", str(tmp_path)]
    result = run_main(*args, *(part for override in overrides for part in ("--set", override)), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = tmp_path.glob("smoke/*/result.json")
    record = json.loads(path.read_text())
    assert record["hparams"]["round_to"] == 8
    convs = [layer for layer in record["layers"] if layer["kind"] == "conv"]
    assert all(layer["out_channels"] % 8 == 0 for layer in convs), [layer["out_channels"] for layer in convs]
    assert any(0 < layer["out_channels"] < layer["out_channels_dense"] for layer in convs)


@pytest.mark.parametrize("value", ["0", "-8", "2.5", "true", "eight"])
@pytest.mark.parametrize("name", list(RUNS))
def test_bad_round_to_is_one_line_naming_the_field(name, value, tmp_path):
    config = REPO / "configs" / "smoke" / f"{name}.yaml"
    result = run_main("run", str(config), "--set", f"method.hparams.round_to={value}", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, f"method '{name}': hparams.round_to")
    assert not (tmp_path / "out").exists()
