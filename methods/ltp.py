"""Learned Threshold Pruning (Azarian, Bhalgat, Lee, Blankevoort; arXiv:2003.00075).

Every Conv/Linear weight tensor gets one learned threshold tau_l. During the prune phase
the layer computes with the soft-pruned weights v = w * sigm((w^2 - tau_l) / T_l) (eq. 2)
and the loss carries lambda * soft L0 (eqs. 7, 11). Gradients follow the paper, not plain
autograd of eq. 2:

- thresholds get dL/dtau + lambda * dL0/dtau (eqs. 3, 9, 12, 14), at lr = eta_tau/eta * lr;
- weights get sigm(.) * dL/dv only (eqs. 16-18): the sigmoid is a constant for w and the
  L0 term never reaches w. Both are done by evaluating the sigmoid on w.detach().

T_l = T0 * var(|w_l|) (eq. 19) is computed once, at attach, from the weights being pruned
(the dense model): the paper calls T a hyper-parameter that is "set" by eq. 19 and keeps T0
fixed, and eqs. 3-9 treat T as a constant. lambda = c^n * lambda0 (eq. 20). At the end of
the phase, weights with w^2 < tau_l are set to zero (eq. 1, hard pruning).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils import parametrize

from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.methods.base import Hparams, PruningMethod, parametrized_layers, remove_weight_parametrization
from prunebench.methods.registry import register

# Sec. 4.1: n grows when "sparsity does not drop by 1%"; read as one percentage point of density.
DENSITY_DROP = 0.01


def soft_prune(w: torch.Tensor, tau: torch.Tensor, T: torch.Tensor | float) -> torch.Tensor:
    """Eq. 2, v = w * sigm((w^2 - tau) / T), with the paper's gradients:
    dv/dtau = -sigma_T(w) / 2 (eq. 3) and dv/dw ~= sigm(...) (eq. 18)."""
    gate = torch.sigmoid((w.detach() ** 2 - tau) / T)
    return w * gate


def soft_l0(w: torch.Tensor, tau: torch.Tensor, T: torch.Tensor | float) -> torch.Tensor:
    """Eq. 7, sum_k sigm((w_k^2 - tau) / T). Differentiable in tau (eq. 9) only: the L0 term
    is not used to update weights (eq. 17)."""
    return torch.sigmoid((w.detach() ** 2 - tau) / T).sum()


def hard_prune_mask(w: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Eq. 1: keep w where step(w^2 - tau) = 1, i.e. w^2 >= tau."""
    return w.detach() ** 2 >= tau.detach()


def layer_temperature(w: torch.Tensor, t0: float) -> torch.Tensor:
    """Eq. 19: T_l = T0 * sigma^2_{|w|}, the (population) variance of the layer's |w|."""
    return t0 * w.detach().abs().var(correction=0)


class SoftPrune(nn.Module):
    """Parametrization of one layer's weight: holds its threshold tau_l (trained) and its
    temperature T_l (a buffer, so checkpoints keep it)."""

    def __init__(self, tau0: float, temperature: torch.Tensor) -> None:
        super().__init__()
        self.tau = nn.Parameter(temperature.new_tensor(tau0))
        self.register_buffer("temperature", temperature.clone())

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return soft_prune(w, self.tau, self.temperature)


class LTPHparams(Hparams):
    t0: float = Field(default=1e-3, gt=0, description="T0 of eq. 19, T_l = T0 * var(|w_l|); Table 1 (1e-3 for every network)")
    tau_lr_ratio: float = Field(
        default=1e-5, gt=0, description="eta_tau/eta: threshold lr relative to the weight lr (eq. 14); Table 1, ResNet20/CIFAR100 (ImageNet nets: 1e-7 to 1e-5)"
    )
    lambda0: float = Field(
        default=2e-6, ge=0, description="lambda_0 of eq. 20, weight of the soft L0 term (eq. 11); Table 1, ResNet20/CIFAR100 (ImageNet nets: 5e-8 to 1e-6)"
    )
    c_lambda: float = Field(
        default=1.0, ge=1, description="c_lambda of eq. 20, growth factor of lambda; Table 1, ResNet20/CIFAR100 (ImageNet nets: 1.05 to 1.25); 1 keeps lambda fixed"
    )
    n_lambda: int = Field(
        default=5, gt=0, description="N_lambda of eq. 20: epochs without a 1-point density drop before n grows; Table 1, ResNet20/CIFAR100 (ImageNet nets: 2 to 5)"
    )
    tau0: float = Field(
        default=0.0, ge=0, description="initial threshold of every layer; the paper does not give one, 0 starts from the dense model (nothing hard-pruned)"
    )
    prune_weight_decay: bool = Field(
        default=False,
        description="apply the run's weight decay to the weights while pruning; off as in eq. 17 (weights follow dL/dw only) and Sec. 3.2 / Fig. 2 (L2 fails with batch-norm)",
    )


@register
class LTP(PruningMethod):
    name = "ltp"
    summary = "learned per-layer thresholds with soft pruning and soft L0 (Azarian et al.)"
    granularity = "unstructured"
    # half to the dense model; the rest as ResNet-50 on ImageNet, 18 epochs pruning, 12 fine-tuning (Sec. 1, 4.2)
    budget_split = {"dense": 0.5, "prune": 0.3, "finetune": 0.2}
    Hparams = LTPHparams

    def __init__(self, hparams: LTPHparams) -> None:
        super().__init__(hparams)
        self.n = 0  # exponent of eq. 20
        self.densities: list[float] = []  # density at the last update of n, then after each epoch

    @property
    def lam(self) -> float:
        """Eq. 20: lambda = c^n * lambda0."""
        return self.hparams.c_lambda**self.n * self.hparams.lambda0

    def check_model(self, model: nn.Module) -> None:
        if not prunable_modules(model):
            raise UserError("method 'ltp': the model has no Conv or Linear layer to prune")

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        kept = total = 0
        for _, module in prunable_modules(model):
            temperature = layer_temperature(module.weight, self.hparams.t0)
            if temperature <= 0:
                raise UserError("method 'ltp': a layer has constant |w|, so T = T0 * var(|w|) is 0 (eq. 19); start from a trained model")
            prune = SoftPrune(self.hparams.tau0, temperature)
            kept += int((hard_prune_mask(module.weight, prune.tau) & (module.weight != 0)).sum())
            total += module.weight.numel()
            parametrize.register_parametrization(module, "weight", prune)
        self.densities = [kept / total]
        return model

    def _thresholds(self) -> list[nn.Parameter]:
        assert self.model is not None, "attach() must run first"
        return [prune.tau for _, prune in parametrized_layers(self.model)]

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Thresholds train at eta_tau = ratio * lr without weight decay (eq. 14); weights at lr."""
        assert self.model is not None, "attach() must run before param_groups()"
        threshold_ids = {id(tau) for tau in self._thresholds()}
        others = [p for p in self.model.parameters() if p.requires_grad and id(p) not in threshold_ids]
        decay = weight_decay if self.hparams.prune_weight_decay else 0.0
        return [
            {"params": others, "lr": lr, "weight_decay": decay},
            {"params": self._thresholds(), "lr": lr * self.hparams.tau_lr_ratio, "weight_decay": 0.0},
        ]

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """lambda * sum_l L0_l (eq. 11, summed over layers; eq. 7 is not normalised)."""
        return self.lam * sum(soft_l0(w, prune.tau, prune.temperature) for w, prune in parametrized_layers(model))

    def on_epoch_end(self, model: nn.Module, epoch: int, metrics: dict[str, float]) -> None:
        """Eq. 20: n += 1 when density fell by less than 1 point over the last N_lambda epochs,
        counting only epochs since n was last updated."""
        self.densities.append(float(metrics["density"]))
        window = self.hparams.n_lambda
        if len(self.densities) > window:
            if self.densities[-1 - window] - self.densities[-1] < DENSITY_DROP:
                self.n += 1
                self.densities = [self.densities[-1]]

    def finalize(self, model: nn.Module) -> nn.Module:
        """Hard-prune with the learned thresholds (eq. 1) on the raw weights w, not on v."""
        for _, module in prunable_modules(model):
            if not parametrize.is_parametrized(module, "weight"):
                continue
            keep = hard_prune_mask(module.parametrizations.weight.original, module.parametrizations.weight[0].tau)
            remove_weight_parametrization(module, leave_parametrized=False)
            with torch.no_grad():
                module.weight.mul_(keep)
        return model

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "densities": list(self.densities)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n = int(state["n"])
        self.densities = [float(d) for d in state["densities"]]
