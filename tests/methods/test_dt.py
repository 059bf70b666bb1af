"""DT against the equations of Park & Lee: the forward pass is eq. 1, the backward pass the
derivatives of eq. 5 (eqs. 8, 9 with the temperature), the loss eq. 3. Closed forms are
written out here, independently of methods/dt.py."""

import copy
import math

from support import fidelity
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.methods.base import parametrized_layers
from prunebench.methods.dt import prune_fn


def phi(w, t):
    """Eq. 1 as the paper writes it, with sign functions."""
    return w / 2 * (torch.sign(w - t) - torch.sign(w + t) + 2)


def phi_tilde(w, t, temp):
    """Eq. 5: the erf approximation of eq. 1."""
    return w / 2 * (torch.erf((w - t) / temp) - torch.erf((w + t) / temp) + 2)


def eq8(w, t, temp):
    a, b = (w - t) / temp, (w + t) / temp
    return 0.5 * (torch.erf(a) - torch.erf(b) + 2) + w / (temp * math.sqrt(math.pi)) * (torch.exp(-a * a) - torch.exp(-b * b))


def eq9(w, t, temp):
    a, b = (w - t) / temp, (w + t) / temp
    return -w / (temp * math.sqrt(math.pi)) * (torch.exp(-a * a) + torch.exp(-b * b))


@pytest.fixture
def weights():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(300, generator=gen, dtype=torch.float64) * 0.05
    s = torch.randn(300, generator=gen, dtype=torch.float64) - 3.0  # t = sigmoid(s) ~ 0.05
    upstream = torch.randn(300, generator=gen, dtype=torch.float64)  # dL_c/dp
    return w, s, upstream


def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double()


def attached(**hparams):
    method = methods.create("dt", **hparams)
    model = tiny_net()
    method.setup(None, 10, 5, (2, 6, 6))
    method.check_model(model)
    return method, method.attach(model)


def test_forward_is_eq1_exactly(weights):
    w, s, _ = weights
    t = torch.sigmoid(s)
    out = prune_fn(w, t, 0.1)
    assert torch.equal(out, phi(w, t))
    assert 0 < int((out == 0).sum()) < w.numel()  # both branches exercised


@pytest.mark.parametrize("temp", [0.1, 0.01])
def test_backward_is_eq8_eq9_with_temperature(weights, temp):
    w, s, upstream = weights
    w = w.clone().requires_grad_()
    s = s.clone().requires_grad_()
    t = torch.sigmoid(s)
    (prune_fn(w, t, temp) * upstream).sum().backward()
    td = t.detach()
    torch.testing.assert_close(w.grad, upstream * eq8(w.detach(), td, temp), rtol=1e-10, atol=1e-14)
    # t = sigmoid(s): dt/ds = t (1 - t)
    torch.testing.assert_close(s.grad, upstream * eq9(w.detach(), td, temp) * td * (1 - td), rtol=1e-10, atol=1e-14)


def test_eq8_eq9_are_the_derivatives_of_eq5(weights):
    """The closed forms above, checked once against autograd of eq. 5 itself."""
    w, s, _ = weights
    w = w.clone().requires_grad_()
    t = torch.sigmoid(s).requires_grad_()
    dw, dt = torch.autograd.grad(phi_tilde(w, t, 0.1).sum(), (w, t))
    torch.testing.assert_close(dw, eq8(w.detach(), t.detach(), 0.1))
    torch.testing.assert_close(dt, eq9(w.detach(), t.detach(), 0.1))


def test_shared_threshold_gradient_sums_over_its_weights(weights):
    w, _, upstream = weights
    s = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    (prune_fn(w, torch.sigmoid(s), 0.1) * upstream).sum().backward()
    t = torch.sigmoid(s.detach())
    torch.testing.assert_close(s.grad, (upstream * eq9(w, t, 0.1)).sum() * t * (1 - t))


@pytest.mark.parametrize("scope, expected_count", [("weight", 2), ("layer", 2), ("global", 1)])
def test_threshold_scopes(scope, expected_count):
    dense_params = sum(p.numel() for p in tiny_net().parameters())
    method, model = attached(threshold_scope=scope)
    thresholds = method.thresholds(model)
    assert len(thresholds) == expected_count
    n_weights = [m.parametrizations.weight.original.numel() for m in (model[0], model[3])]
    sizes = {"weight": n_weights, "layer": [1, 1], "global": [1]}[scope]
    assert [s.numel() for s in thresholds] == sizes
    assert sum(p.numel() for p in model.parameters()) == dense_params + sum(sizes)
    for s in thresholds:
        assert torch.all(torch.sigmoid(s) == torch.sigmoid(torch.tensor(-5.0, dtype=torch.float64)))  # t0 = 0.0067


@pytest.mark.parametrize("scope", ["weight", "layer", "global"])
def test_sparsity_loss_is_eq3_over_weights(scope):
    method, model = attached(threshold_scope=scope, lam=1e-3)
    with torch.no_grad():
        for s in method.thresholds(model):
            s.copy_(torch.linspace(-6, -1, s.numel(), dtype=s.dtype).view_as(s))
    expected = 0.0
    for module in (model[0], model[3]):  # t_i of each weight i, shared values repeated
        prune = module.parametrizations.weight[0]
        t_i = torch.sigmoid(prune.s.detach()).expand_as(module.parametrizations.weight.original)
        expected = expected + torch.log(t_i).sum()
    torch.testing.assert_close(method.penalty(model).detach(), -1e-3 * expected)


@pytest.mark.parametrize("scope, n_terms", [("weight", 4 * 2 * 9 + 3 * 64), ("layer", 2), ("global", 1)])
def test_sparsity_loss_over_threshold_parameters(scope, n_terms):
    method, model = attached(threshold_scope=scope, lam=1e-3, penalty_sum="thresholds", s0=-4.0)
    expected = -1e-3 * n_terms * math.log(1 / (1 + math.exp(4.0)))  # each threshold counted once
    assert method.penalty(model).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scope", ["weight", "global"])
def test_param_groups_cover_each_parameter_once(scope):
    method, model = attached(threshold_scope=scope)
    groups = method.param_groups(lr=1e-3, weight_decay=5e-4)
    ids = [id(p) for group in groups for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert len(ids) == len(set(ids))
    (threshold_group,) = [g for g in groups if {id(p) for p in g["params"]} == {id(s) for s in method.thresholds(model)}]
    assert threshold_group["lr"] == 1e-3 and threshold_group["weight_decay"] == 0.0


def test_finalize_bakes_in_eq1_zeros():
    method, model = attached(threshold_scope="layer")
    with torch.no_grad():
        for s in method.thresholds(model):
            s.fill_(math.log(0.1 / 0.9))  # t = 0.1
    raw = [m.parametrizations.weight.original.detach().clone() for m in (model[0], model[3])]
    pruned = method.finalize(model)
    assert not any(parametrize.is_parametrized(m) for m in pruned.modules())
    assert not any("parametrizations" in key for key in pruned.state_dict())
    for module, w in zip((pruned[0], pruned[3]), raw):
        assert torch.equal(module.weight.detach(), torch.where(w.abs() < 0.1, torch.zeros_like(w), w))
        assert int((module.weight == 0).sum()) > 0


@pytest.mark.parametrize("scope", ["weight", "global"])
def test_snapshot_leaves_the_training_model_attached(scope):
    method, model = attached(threshold_scope=scope, s0=math.log(0.1 / 0.9))
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    before = model(x)
    snap = method.snapshot(model)
    assert not any(parametrize.is_parametrized(m) for m in snap.modules())
    assert int((snap[0].weight == 0).sum()) > 0
    torch.testing.assert_close(snap(x), before)  # the forward pass is already the hard-pruned one
    torch.testing.assert_close(model(x), before)
    assert parametrize.is_parametrized(model[0], "weight")


@pytest.mark.parametrize("scope", ["weight", "layer", "global"])
def test_finalized_model_computes_what_the_attached_model_computes(scope):
    """The forward pass already prunes with eq. 1, so finalize keeps the attached model's eval
    output (within 1e-6 of the largest logit), and both equal the dense model with every prunable
    weight kept where |w| >= t = sigmoid(s), written out here. Thresholds near each layer's median
    |w| (or the network's, for one global threshold) prune about half the weights."""
    generator = torch.Generator().manual_seed(0)
    dense = fidelity.randomize_batchnorms(fidelity.create_model("resnet20"), generator)
    method = methods.create("dt", threshold_scope=scope)
    method.setup(None, 1, 1, fidelity.SHAPE)
    model = method.attach(copy.deepcopy(dense))
    layers = parametrized_layers(model)
    network_median = torch.cat([w.detach().abs().flatten() for w, _ in layers]).median()
    expected = copy.deepcopy(dense)
    with torch.no_grad():
        for (w, prune), (_, reference) in zip(layers, prunable_modules(expected)):
            factor = 0.5 + torch.rand(prune.s.shape, generator=generator)  # per weight or per layer
            t = network_median if scope == "global" else w.abs().median() * factor
            prune.s.copy_(torch.logit(t))
            reference.weight.mul_(w.abs() >= torch.sigmoid(prune.s))
    x = fidelity.random_inputs(generator)
    before = fidelity.logits(model, x)
    pruned = method.finalize(model)
    assert fidelity.relative_deviation(fidelity.logits(pruned, x), before) <= 1e-6
    assert fidelity.relative_deviation(fidelity.logits(pruned, x), fidelity.logits(expected, x)) <= 1e-6


def test_phases_train_from_scratch():
    assert methods.get("dt").phases == ("prune", "finetune")


@pytest.mark.parametrize(
    "field, value",
    [("lam", -1e-4), ("temperature", 0.0), ("temperature", -0.1), ("threshold_scope", "neuron"), ("penalty_sum", "layers"), ("bogus", 1)],
)
def test_bad_hparams_name_method_and_field(field, value):
    with pytest.raises(UserError, match=rf"method 'dt': hparams\.{field}"):
        methods.create("dt", **{field: value})
