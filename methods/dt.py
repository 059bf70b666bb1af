"""Dynamic Thresholding (Park & Lee, ECAI 2020, "Dynamic Thresholding for Learning Sparse
Neural Networks").

Weights and pruning thresholds train together from scratch. The forward pass uses the exact
pruning function Phi(w, t) (eq. 1), so the network computes with its pruned weights at every
step; the backward pass uses the derivatives of its erf approximation with temperature
(eq. 5), i.e. eqs. 8 and 9 with the temperature kept in. Thresholds are t = sigmoid(s) with
s0 = -5 (Sec. 4.2.1), one per weight, per layer or for the whole network (Sec. 3.2), and the
loss carries L_p = -lambda * sum_i log t_i (eq. 3). Eq. 3 is written for per-weight
thresholds; for shared ones the paper does not say whether i runs over weights (a shared
threshold counted once per weight it prunes, the default) or over threshold parameters
(`penalty_sum: thresholds`). On digits and on MNIST only the latter reproduces the ordering of
Table 1, not its sizes (README, Fidelity).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils import parametrize

from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.methods.base import Hparams, PruningMethod, parametrized_layers, remove_weight_parametrization
from prunebench.methods.registry import register


class _PruneFunction(torch.autograd.Function):
    """Forward: exact eq. 1. Backward: d/dw and d/dt of eq. 5 (eqs. 8, 9 with temperature)."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
        ctx.save_for_backward(w, t)
        ctx.temperature = temperature
        return w * (w.abs() >= t)  # 0 where |w| < t; a third faster than torch.where with a zeros tensor

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """In place on its own temporaries: a weight tensor of AlexNet's is 38M entries, and each
        temporary fewer is 150 MB less to allocate and fill per step."""
        w, t = ctx.saved_tensors
        temperature = ctx.temperature
        minus, plus = (w - t).div_(temperature), (w + t).div_(temperature)
        e_minus, e_plus = minus.square().neg_().exp_(), plus.square().neg_().exp_()
        scale = w / (temperature * math.sqrt(math.pi))
        d_w = torch.erf(minus).sub_(torch.erf(plus)).add_(2).mul_(0.5).addcmul_(scale, e_minus - e_plus)  # eq. 8
        d_t = e_minus.add_(e_plus).mul_(scale).neg_()  # eq. 9
        return d_w.mul_(grad), d_t.mul_(grad), None


def prune_fn(w: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Phi(w, t) of eq. 1 (0 where |w| < t, else w) with the gradients of its erf approximation
    (eqs. 5, 8, 9). `t` broadcasts against `w` (per-layer or global thresholds); the gradient
    of a shared threshold is the sum over the weights it applies to."""
    return _PruneFunction.apply(w, t.expand_as(w), temperature)


class ThresholdPrune(nn.Module):
    """Parametrization of one layer's weight. `s` is the pre-sigmoid threshold: its own tensor
    (per weight or per layer) or one Parameter shared by every layer (global)."""

    def __init__(self, s: nn.Parameter, temperature: float) -> None:
        super().__init__()
        self.s = s
        self.temperature = temperature

    def threshold(self) -> torch.Tensor:
        """Sec. 4.2.1: t = sigmoid(s) keeps the threshold in (0, 1)."""
        return torch.sigmoid(self.s)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return prune_fn(w, self.threshold(), self.temperature)


class DTHparams(Hparams):
    threshold_scope: Literal["weight", "layer", "global"] = Field(
        default="weight", description="one threshold per weight, per layer or for the network (Sec. 3.2); per weight is the paper's choice after Table 1"
    )
    lam: float = Field(
        default=1.8e-4, ge=0, description="lambda of eq. 3; Sec. 4.2.1 gives 1.8e-4 (VGG-like/CIFAR10, Adam) and 2e-5 (AlexNet/ImageNet), none for MNIST"
    )
    temperature: float = Field(default=0.1, gt=0, description="temperature of the erf approximation (eq. 5); Sec. 4.2.1 gives none, Fig. 2 uses 0.1")
    s0: float = Field(default=-5.0, description="initial pre-sigmoid threshold, t0 = sigmoid(-5) = 0.0067 (Sec. 4.2.1)")
    penalty_sum: Literal["weights", "thresholds"] = Field(
        default="weights",
        description="what eq. 3 sums log t over when thresholds are shared: every weight's t_i (eq. 3 as printed) or each threshold "
        "parameter once (a per-layer/global threshold counted once); the same for per-weight thresholds",
    )


@register
class DT(PruningMethod):
    name = "dt"
    summary = "dynamic thresholding: learned thresholds, exact pruning forward, erf-gradient backward (Park & Lee)"
    phases = ("prune", "finetune")
    granularity = "unstructured"
    budget_split = {"prune": 1.0}  # from scratch, the pruned network is final (Sec. 4.2.1)
    Hparams = DTHparams

    def check_model(self, model: nn.Module) -> None:
        if not prunable_modules(model):
            raise UserError("method 'dt': the model has no Conv or Linear layer to prune")

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        scope, s0 = self.hparams.threshold_scope, self.hparams.s0
        modules = [module for _, module in prunable_modules(model)]
        shared = nn.Parameter(modules[0].weight.new_tensor(s0)) if scope == "global" else None
        for module in modules:
            if scope == "weight":
                s = nn.Parameter(torch.full_like(module.weight, s0))
            elif scope == "layer":
                s = nn.Parameter(module.weight.new_tensor(s0))
            else:
                s = shared
            parametrize.register_parametrization(module, "weight", ThresholdPrune(s, self.hparams.temperature))
        return model

    def thresholds(self, model: nn.Module) -> list[nn.Parameter]:
        """The distinct threshold parameters s (a global one is listed once)."""
        unique: dict[int, nn.Parameter] = {}
        for _, prune in parametrized_layers(model):
            unique.setdefault(id(prune.s), prune.s)
        return list(unique.values())

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Thresholds follow the same lr as the weights (eq. 7 uses one alpha) and get no weight
        decay, which would pull s towards 0, i.e. t towards 0.5."""
        assert self.model is not None, "attach() must run before param_groups()"
        thresholds = self.thresholds(self.model)
        threshold_ids = {id(s) for s in thresholds}
        others = [p for p in self.model.parameters() if p.requires_grad and id(p) not in threshold_ids]
        return [
            {"params": others, "lr": lr, "weight_decay": weight_decay},
            {"params": thresholds, "lr": lr, "weight_decay": 0.0},
        ]

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """Eq. 3: -lambda * sum log t, over weights or over threshold parameters (log-sigmoid for
        stability)."""
        if self.hparams.penalty_sum == "thresholds":
            return -self.hparams.lam * sum(nn.functional.logsigmoid(s).sum() for s in self.thresholds(model))
        return -self.hparams.lam * sum(
            nn.functional.logsigmoid(prune.s).expand_as(w).sum() for w, prune in parametrized_layers(model)
        )

    def finalize(self, model: nn.Module) -> nn.Module:
        """Eq. 1 already yields exact zeros: keep the pruned weights as the plain weights."""
        for _, module in prunable_modules(model):
            if parametrize.is_parametrized(module, "weight"):
                remove_weight_parametrization(module, leave_parametrized=True)
        return model

