"""PSP against Schindler et al.: the thresholded forward (eqs. 2-3) with the straight-through
gradient (eq. 4) checked against closed forms, Table 1's structure shapes, weight decay on alpha in
its own group (eq. 6), and the fold + physical removal at the end."""

import copy

from support import fidelity
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.harness.models import CifarResNet
from prunebench.methods.channels import ConstantBranch, ZeroBranch
from prunebench.methods.psp import threshold_ste

SHAPE = (3, 8, 8)


class Net(nn.Module):
    """input conv -> middle conv, plus a 'shortcut' conv from the input -> classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(6)
        self.middle = nn.Conv2d(6, 4, (3, 2), padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.shortcut = nn.Conv2d(3, 4, 1)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.bn0(self.stem(x)))
        out = self.bn1(self.middle(features))[..., :8, :8] + self.shortcut(x)  # the (3, 2) kernel adds a column
        return self.head(torch.relu(out).mean((2, 3)))


def attached(model: nn.Module, shape: tuple[int, ...] = SHAPE, **hparams) -> methods.PruningMethod:
    method = methods.create("psp", **hparams)
    method.setup(None, 1, 1, shape)
    method.check_model(model)
    method.attach(model)
    return method


def alpha_of(module: nn.Module) -> nn.Parameter:
    return module.parametrizations.weight[0].alpha


def test_threshold_ste_zeroes_small_alpha_and_passes_the_gradient_straight_through():
    alpha = torch.tensor([0.05, -0.3, 0.2, -0.01, 0.1], requires_grad=True)
    nu = threshold_ste(alpha, 0.1)
    assert nu.tolist() == pytest.approx([0.0, -0.3, 0.2, 0.0, 0.1])  # eq. 3: |alpha| >= epsilon survives
    upstream = torch.tensor([1.0, 2.0, -3.0, 4.0, 5.0])
    (nu * upstream).sum().backward()
    assert alpha.grad.tolist() == upstream.tolist()  # eq. 4: dE/dalpha = dE/dnu, also where nu = 0


def test_parametrised_layer_computes_q_and_the_chain_rule_gradients():
    torch.manual_seed(0)
    model = Net()
    attached(model, granularity="channel", epsilon=0.1)
    layer = model.middle
    with torch.no_grad():
        alpha_of(layer).copy_(torch.tensor([0.5, 0.05, -0.2, 0.01, 0.3, -0.09]).view(1, 6, 1, 1))
    w = layer.parametrizations.weight.original
    nu = torch.tensor([0.5, 0.0, -0.2, 0.0, 0.3, 0.0]).view(1, 6, 1, 1)
    torch.testing.assert_close(layer.weight, w * nu)  # eq. 2
    upstream = torch.randn(layer.weight.shape)
    (layer.weight * upstream).sum().backward()
    # dE/dalpha_c = sum_{k,r,s} w_kcrs dE/dq_kcrs (Table 1, channel), for pruned channels too
    torch.testing.assert_close(alpha_of(layer).grad, (w * upstream).sum((0, 2, 3), keepdim=True).detach())
    torch.testing.assert_close(w.grad, upstream * nu)


@pytest.mark.parametrize(
    ("granularity", "shape"),
    [("column", (1, 6, 3, 2)), ("channel", (1, 6, 1, 1)), ("shape", (1, 1, 3, 2)), ("layer", (1, 1, 1, 1))],
)
def test_structure_parameter_shapes_follow_table_1(granularity, shape):
    model = Net()  # middle: K=4, C=6, R x S = 3 x 2
    method = attached(model, granularity=granularity)
    assert method.layer_names == ["middle"]  # input, output and shortcut layers stay dense
    assert tuple(alpha_of(model.middle).shape) == shape


def test_input_and_output_layers_can_be_included():
    model = Net()
    method = attached(model, include_input=True, include_output=True, exclude_names=[])
    assert method.layer_names == ["stem", "middle", "shortcut", "head"]
    assert tuple(alpha_of(model.head).shape) == (1, 4)  # Linear: column = input features


def test_alpha_init_is_gaussian_with_std_0_1():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 400, 1), nn.Conv2d(400, 2, 5), nn.Conv2d(2, 2, 1))
    alpha = alpha_of(attached(model, granularity="column").model[1]).detach()  # 400 x 5 x 5 columns
    assert float(alpha.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(alpha.std()) == pytest.approx(0.1, rel=0.05)


def test_weight_decay_on_alpha_lives_in_its_own_group():
    model = Net()
    method = attached(model, alpha_weight_decay=3e-3)
    groups = method.param_groups(lr=0.1, weight_decay=5e-4)
    alpha = alpha_of(model.middle)
    (alpha_group,) = [g for g in groups if any(p is alpha for p in g["params"])]
    assert alpha_group["weight_decay"] == 3e-3 and len(alpha_group["params"]) == 1
    listed = [id(p) for g in groups for p in g["params"]]
    assert sorted(listed) == sorted(id(p) for p in model.parameters()) and len(set(listed)) == len(listed)
    # eq. 6 without a loss gradient (mu = 0): alpha <- alpha - eta * lambda * alpha
    before = alpha.detach().clone()
    optimizer = torch.optim.SGD(groups, lr=0.1)
    (0 * model(torch.randn(2, *SHAPE)).sum()).backward()
    optimizer.step()
    torch.testing.assert_close(alpha.detach(), before * (1 - 0.1 * 3e-3))


def test_finalize_folds_alpha_and_removes_ignored_channels():
    torch.manual_seed(0)
    model = Net().eval()
    method = attached(model, granularity="channel")
    with torch.no_grad():
        alpha_of(model.middle).copy_(torch.tensor([1.0, 0.05, 0.8, -0.1, -0.7, 0.15]).view(1, 6, 1, 1))  # epsilon 0.2
    expected_weight = model.middle.weight.detach()[:, [0, 2, 4]].clone()
    reference = copy.deepcopy(model)
    x = torch.randn(2, *SHAPE)
    snapshot = method.snapshot(model)  # on a copy: the model keeps its parametrization
    assert parametrize.is_parametrized(model.middle)
    pruned = method.finalize(model)
    for result in (snapshot, pruned):
        assert not any(parametrize.is_parametrized(m) for m in result.modules())
        assert result.middle.in_channels == 3
        assert result.stem.out_channels == 3 and result.bn0.num_features == 3
    torch.testing.assert_close(pruned.middle.weight, expected_weight)
    torch.testing.assert_close(pruned(x), reference(x))


def test_layer_granularity_removes_a_residual_branch_with_a_zero_layer():
    """The branch's layers go; what it still output, bn2's shift after the zero conv2, stays."""
    torch.manual_seed(0)
    model = CifarResNet(8, 10).eval()
    method = attached(model, granularity="layer")
    assert "layer1.0.conv2" in method.layer_names and "layer2.0.shortcut.0" not in method.layer_names
    with torch.no_grad():
        for name in method.layer_names:
            alpha_of(model.get_submodule(name)).fill_(1.0)
        alpha_of(model.layer1[0].conv2).fill_(0.1)
    fidelity.randomize_batchnorms(model, torch.Generator().manual_seed(0))
    bn2 = model.layer1[0].bn2
    shift = (bn2.bias - bn2.weight * bn2.running_mean / torch.sqrt(bn2.running_var + bn2.eps)).detach()  # bn2(0)
    x = torch.randn(2, *SHAPE)
    before = fidelity.logits(model, x)
    pruned = method.finalize(model)
    assert fidelity.relative_deviation(fidelity.logits(pruned, x), before) <= 1e-5
    assert all(isinstance(getattr(pruned.layer1[0], name), ZeroBranch) for name in ("conv1", "bn1", "conv2"))
    assert isinstance(pruned.layer1[0].bn2, ConstantBranch)
    torch.testing.assert_close(pruned.layer1[0].bn2.value, shift.view(16, 1, 1))  # a per-channel bias
    assert isinstance(pruned.layer2[0].conv2, nn.Conv2d)


def random_alphas(method: methods.PruningMethod, model: nn.Module, generator: torch.Generator) -> None:
    """Half the structures below epsilon, the others with |alpha| in [1, 2], random signs: kept
    layers keep the signal's scale, so the output still depends on the input after a dozen
    layers (with alphas near epsilon only the BN shifts would reach the logits)."""
    epsilon = method.hparams.epsilon
    with torch.no_grad():
        for alpha in method.structure_parameters(model):
            uniform = [torch.rand(alpha.shape, generator=generator) for _ in range(3)]
            magnitude = torch.where(uniform[0] < 0.5, epsilon * uniform[1], 1 + uniform[1])
            alpha.copy_(torch.where(uniform[2] < 0.5, -magnitude, magnitude))


@pytest.mark.parametrize("granularity", ["column", "channel", "shape", "layer"])
@pytest.mark.parametrize("name", fidelity.MODELS)
def test_finalized_model_computes_what_the_attached_model_computes(name, granularity):
    """Folding alpha, dropping ignored input channels and removing zero branches keep the eval
    output within 1e-5 of the largest logit. In residual networks one branch loses its last conv
    (its output is its bn2's shift) and one its first conv (a spatial map: padding); the layer
    granularity zeroes many more."""
    model = fidelity.create_model(name)
    method = attached(model, fidelity.SHAPE, granularity=granularity)
    generator = torch.Generator().manual_seed(0)
    random_alphas(method, model, generator)
    branch_convs = [layer for layer in method.layer_names if layer.endswith(("conv1", "conv2"))]
    if branch_convs:
        first_conv2 = next(layer for layer in branch_convs if layer.endswith("conv2"))
        last_conv1 = [layer for layer in branch_convs if layer.endswith("conv1")][-1]
        with torch.no_grad():
            for layer in (first_conv2, last_conv1):
                alpha_of(model.get_submodule(layer)).zero_()
    fidelity.randomize_batchnorms(model, generator)
    x = fidelity.random_inputs(generator)
    before = fidelity.logits(model, x)
    pruned = method.finalize(model)
    assert fidelity.relative_deviation(fidelity.logits(pruned, x), before) <= 1e-5
    assert not any(parametrize.is_parametrized(m) for m in pruned.modules())
    if branch_convs:  # the zeroed branches went, and what they output stayed
        constants = [m.value for m in pruned.modules() if isinstance(m, ConstantBranch)]
        assert len(constants) >= 2 and all(value.abs().max() > 0 for value in constants)


def test_bad_granularity_is_a_user_error():
    with pytest.raises(UserError, match="method 'psp': hparams.granularity"):
        methods.create("psp", granularity="filter")


def test_model_with_nothing_to_parametrise_is_a_user_error():
    with pytest.raises(UserError, match="method 'psp': model has no Conv or Linear layer to parametrise"):
        methods.create("psp").check_model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
