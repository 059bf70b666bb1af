"""LTP against the equations of Azarian et al.: closed forms are written out here, not copied
from methods/ltp.py, and compared with what autograd produces through the method."""

import copy

from support import fidelity
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from prunebench import methods
from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.methods.ltp import soft_l0, soft_prune


def sigm(x):
    return 1.0 / (1.0 + torch.exp(-x))


def sigma_T(w, tau, T):
    """Eq. 5."""
    s = sigm((w**2 - tau) / T)
    return 2 * w / T * s * (1 - s)


@pytest.fixture
def layer():
    """Weights whose squares straddle tau within a few T: many in the transitional region."""
    gen = torch.Generator().manual_seed(0)
    w = (torch.randn(200, generator=gen, dtype=torch.float64) * 0.1).requires_grad_()
    tau = torch.tensor(0.01, dtype=torch.float64, requires_grad=True)
    T = 0.004
    upstream = torch.randn(200, generator=gen, dtype=torch.float64)  # dL/dv
    return w, tau, T, upstream


def tiny_net():
    """float64, so closed forms can be compared tightly."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double()


def attached(**hparams):
    method = methods.create("ltp", **hparams)
    model = tiny_net()
    method.setup(None, 10, 5, (2, 6, 6))
    method.check_model(model)
    return method, method.attach(model)


def test_soft_prune_value_is_eq2(layer):
    w, tau, T, _ = layer
    expected = w * sigm((w**2 - tau) / T)
    torch.testing.assert_close(soft_prune(w, tau, T), expected, rtol=1e-12, atol=0)


def test_threshold_gradient_is_eq3(layer):
    """dL/dtau = sum_k dL/dv_k * dv_k/dtau (eq. 12) with dv/dtau = -sigma_T(w)/2 (eq. 3)."""
    w, tau, T, upstream = layer
    (soft_prune(w, tau, T) * upstream).sum().backward()
    expected = (upstream * (-0.5 * sigma_T(w, tau, T))).sum()
    torch.testing.assert_close(tau.grad, expected.detach(), rtol=1e-10, atol=0)


def test_weight_gradient_is_eq18_not_eq4(layer):
    """dL/dw = sigm(.) * dL/dv (eqs. 16, 18), not the exact eq. 4 that autograd would give."""
    w, tau, T, upstream = layer
    (soft_prune(w, tau, T) * upstream).sum().backward()
    s = sigm((w**2 - tau) / T).detach()
    torch.testing.assert_close(w.grad, upstream * s, rtol=1e-12, atol=0)
    exact_eq4 = upstream * (s + w * sigma_T(w, tau, T)).detach()
    assert (w.grad - exact_eq4).abs().max() > 1e-2  # the approximation matters in this layer


def test_soft_l0_value_and_eq9_without_weight_gradient(layer):
    w, tau, T, upstream = layer
    lam = 0.3
    l0 = soft_l0(w, tau, T)
    s = sigm((w**2 - tau) / T).detach()
    torch.testing.assert_close(l0.detach(), s.sum(), rtol=1e-12, atol=0)  # eq. 7, not normalised
    total = (soft_prune(w, tau, T) * upstream).sum() + lam * l0  # eq. 11
    total.backward()
    eq9 = -(1 / T) * (s * (1 - s)).sum()
    eq12 = (upstream * (-0.5 * sigma_T(w, tau, T).detach())).sum()
    torch.testing.assert_close(tau.grad, eq12 + lam * eq9, rtol=1e-10, atol=0)  # eq. 14's bracket
    torch.testing.assert_close(w.grad, upstream * s, rtol=1e-12, atol=0)  # eq. 17: no lambda term


def test_soft_l0_alone_sends_nothing_to_weights(layer):
    w, tau, T, _ = layer
    soft_l0(w, tau, T).backward()
    assert w.grad is None and tau.grad is not None


def test_temperature_is_eq19_and_forward_uses_soft_pruned_weights():
    dense = tiny_net()
    method, model = attached(t0=1e-3)
    for index in (0, 4):
        before, module = dense[index], model[index]
        absw = before.weight.detach().abs()
        variance = ((absw - absw.mean()) ** 2).mean()  # sigma^2 of |w| over the layer
        prune = module.parametrizations.weight[0]
        torch.testing.assert_close(prune.temperature, 1e-3 * variance, rtol=1e-12, atol=0)
        expected = before.weight * sigm((before.weight**2 - prune.tau) / prune.temperature)
        torch.testing.assert_close(module.weight, expected)


def test_thresholds_are_parameters_in_the_state_dict():
    _, model = attached(tau0=0.02)
    keys = model.state_dict().keys()
    assert {"0.parametrizations.weight.0.tau", "0.parametrizations.weight.0.temperature", "4.parametrizations.weight.0.tau"} <= set(keys)
    assert model.state_dict()["0.parametrizations.weight.0.tau"].item() == pytest.approx(0.02)


def test_penalty_is_lambda_times_summed_soft_l0():
    method, model = attached(lambda0=0.5, tau0=0.001)
    expected = 0.0
    for module in (model[0], model[4]):
        w, prune = module.parametrizations.weight.original, module.parametrizations.weight[0]
        expected = expected + sigm((w.detach() ** 2 - prune.tau.detach()) / prune.temperature).sum()
    torch.testing.assert_close(method.penalty(model).detach(), 0.5 * expected)


def test_lambda_schedule_eq20_hand_computed():
    """c = 2, N = 2, lambda0 = 1e-3; start density 1.0 (tau0 = 0 keeps every weight).
    epoch density  window compared (since last update of n)        n
      1   0.996    too short                                         0
      2   0.992    1.0   -> 0.992: drop 0.008 < 0.01                 1
      3   0.980    too short since the update                        1
      4   0.950    0.992 -> 0.950: drop 0.042                        1
      5   0.945    0.980 -> 0.945: drop 0.035                        1
      6   0.943    0.950 -> 0.943: drop 0.007 < 0.01                 2
      7   0.942    too short since the update                        2
      8   0.941    0.943 -> 0.941: drop 0.002 < 0.01                 3
    """
    method, model = attached(lambda0=1e-3, c_lambda=2.0, n_lambda=2)
    densities = [0.996, 0.992, 0.980, 0.950, 0.945, 0.943, 0.942, 0.941]
    expected_n = [0, 1, 1, 1, 1, 2, 2, 3]
    for epoch, (density, n) in enumerate(zip(densities, expected_n)):
        method.on_epoch_end(model, epoch, {"train_loss": 1.0, "val_top1": 0.5, "density": density, "compression": 1 / density})
        assert method.n == n, f"epoch {epoch + 1}"
        assert method.lam == pytest.approx(1e-3 * 2.0**n)
        if epoch == 4:  # a restarted run continues the schedule
            restored = methods.create("ltp", lambda0=1e-3, c_lambda=2.0, n_lambda=2)
            restored.load_state_dict(copy.deepcopy(method.state_dict()))
            method = restored


def test_param_groups_lr_ratio_and_coverage():
    method, model = attached(tau_lr_ratio=1e-5, prune_weight_decay=True)
    groups = method.param_groups(lr=0.1, weight_decay=5e-4)
    ids = [id(p) for group in groups for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert len(ids) == len(set(ids))
    taus = {id(m.parametrizations.weight[0].tau) for m in (model[0], model[4])}
    (threshold_group,) = [g for g in groups if {id(p) for p in g["params"]} == taus]
    assert threshold_group["lr"] == pytest.approx(0.1 * 1e-5) and threshold_group["weight_decay"] == 0.0
    (weight_group,) = [g for g in groups if g is not threshold_group]
    assert weight_group["lr"] == 0.1 and weight_group["weight_decay"] == 5e-4
    no_decay = attached()[0].param_groups(lr=0.1, weight_decay=5e-4)
    assert all(group["weight_decay"] == 0.0 for group in no_decay)


def test_finalize_hard_prunes_raw_weights_with_eq1():
    method, model = attached()
    raw = {}
    for module in (model[0], model[4]):
        w = module.parametrizations.weight.original.detach()
        with torch.no_grad():
            module.parametrizations.weight[0].tau.fill_(float(w.pow(2).median()))
        raw[module] = (w.clone(), float(w.pow(2).median()))
    pruned = method.finalize(model)
    assert not any(parametrize.is_parametrized(m) for m in pruned.modules())
    assert not any("parametrizations" in key for key in pruned.state_dict())
    for module, (w, tau) in raw.items():
        expected = torch.where(w**2 < tau, torch.zeros_like(w), w)  # eq. 1 on w, not on v
        assert torch.equal(module.weight.detach(), expected)
        assert type(module.weight) is nn.Parameter


@pytest.mark.parametrize("name", ["resnet20", "vgg14_bn"])
def test_finalized_model_is_the_dense_model_times_the_eq1_mask(name):
    """finalize(attached) computes (within 1e-6 of the largest logit) what the dense model computes
    with every prunable weight multiplied by eq. 1's keep mask w^2 >= tau_l, written out here;
    biases and BatchNorms are untouched. The attached forward is not the reference: it uses eq. 2's
    soft weights, which finalize replaces by the hard-pruned ones."""
    generator = torch.Generator().manual_seed(0)
    dense = fidelity.randomize_batchnorms(fidelity.create_model(name), generator)
    method = methods.create("ltp")
    method.setup(None, 1, 1, fidelity.SHAPE)
    model = method.attach(copy.deepcopy(dense))
    expected = copy.deepcopy(dense)
    with torch.no_grad():
        for (_, layer), (_, reference) in zip(prunable_modules(model), prunable_modules(expected)):
            w = reference.weight
            share = 0.1 + 0.8 * float(torch.rand((), generator=generator))  # each layer prunes 10% to 90%
            tau = torch.quantile(w.flatten() ** 2, share)
            layer.parametrizations.weight[0].tau.fill_(tau)
            w.mul_(w**2 >= tau)
    x = fidelity.random_inputs(generator)
    pruned = method.finalize(model)
    assert fidelity.relative_deviation(fidelity.logits(pruned, x), fidelity.logits(expected, x)) <= 1e-6


def test_snapshot_leaves_the_training_model_attached():
    method, model = attached(tau0=0.01)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    before = model(x)
    snap = method.snapshot(model)
    assert not parametrize.is_parametrized(snap[0], "weight")
    assert int((snap[0].weight == 0).sum()) > 0
    assert parametrize.is_parametrized(model[0], "weight")
    torch.testing.assert_close(model(x), before)  # the training model still computes with v


@pytest.mark.parametrize(
    "field, value", [("lambda0", -1.0), ("t0", 0.0), ("tau_lr_ratio", -1e-5), ("c_lambda", 0.5), ("n_lambda", 0), ("bogus", 1)]
)
def test_bad_hparams_name_method_and_field(field, value):
    with pytest.raises(UserError, match=rf"method 'ltp': hparams\.{field}"):
        methods.create("ltp", **{field: value})
