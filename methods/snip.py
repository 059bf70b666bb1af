"""SNIP: single-shot network pruning based on connection sensitivity (Lee, Ajanthan & Torr,
ICLR 2019).

Before any training, each connection j gets the sensitivity of the loss to its mask c_j at c = 1
(eqs. 3-6 of the paper):

    g_j(w; D) = dL(c ⊙ w; D) / dc_j = (dL/dw_j) * w_j,        s_j = |g_j| / sum_k |g_k|

on a mini-batch D at the initial weights w. The kappa connections of largest s_j are kept over
the whole network (one ranking over all Conv/Linear weights, the classifier included), kappa =
round(N / target_compression); the normalisation by sum_k |g_k| does not change the ranking, so
the score kept is |g ⊙ w|. The sparse network is then trained as usual, its removed weights held
at zero.

In the loop: the first `batches` optimizer steps of the prune phase compute the gradient; after
each the model's state is put back to the initial one, so that every batch's gradient is taken
at the initial weights, and D is the union of those batches (their gradients summed). After the
last of them the masks are computed and applied; the rest of the phase trains the sparse
network. Those steps leave the optimizer's momentum buffers as they made them.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from prunebench.core.errors import UserError
from prunebench.methods.base import Hparams
from prunebench.methods.global_magnitude import global_magnitude_masks
from prunebench.methods.masks import MaskedTraining, prunable_weights
from prunebench.methods.registry import register


def connection_sensitivity(weights: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """|g ⊙ w| per connection (eq. 6 without its normalisation, which keeps the ranking)."""
    return [(grad * weight.detach()).abs() for weight, grad in zip(weights, grads)]


class SnipHparams(Hparams):
    batches: int = Field(
        default=1, ge=1, le=10_000, description="mini-batches the sensitivity is computed on; Lee et al. Sec. 4: one mini-batch "
        "(100 examples on MNIST, 128 on CIFAR-10)"
    )


@register
class Snip(MaskedTraining):
    name = "snip"
    summary = "SNIP (Lee et al. 2019): connection sensitivity |g * w| at initialisation, pruned to the target, trained sparse"
    phases = ("prune",)
    granularity = "unstructured"
    budget_split = {"prune": 1.0}
    needs_target_compression = True
    Hparams = SnipHparams

    def __init__(self, hparams: SnipHparams) -> None:
        super().__init__(hparams)
        self.initial: dict[str, torch.Tensor] | None = None
        self.grads: list[torch.Tensor] = []
        self.scores: list[torch.Tensor] = []
        self.scored = 0

    def setup(self, target_compression: float | None, prune_epochs: int, steps_per_epoch: int, input_shape: tuple[int, ...]) -> None:
        if self.hparams.batches > steps_per_epoch:
            raise UserError(f"method 'snip': hparams.batches: {self.hparams.batches} batches, but an epoch has {steps_per_epoch}")
        super().setup(target_compression, prune_epochs, steps_per_epoch, input_shape)

    @classmethod
    def min_epochs(cls, hparams: Hparams, target_compression: float | None) -> dict[str, int]:
        return {"prune": 1}  # it scores and trains there

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        self.initial = {key: value.detach().clone() for key, value in model.state_dict().items()}
        self.grads = [torch.zeros_like(weight) for weight in prunable_weights(model)]
        self.masks, self.scored = None, 0
        return model

    def after_step(self, model: nn.Module, step: int) -> None:
        if self.masks is None:
            self._score(model)
        self.apply_masks(model)

    def _score(self, model: nn.Module) -> None:
        """One batch's gradient, taken at the initial weights; the masks after the last batch."""
        assert self.initial is not None and self.target_compression is not None
        for total, weight in zip(self.grads, prunable_weights(model)):
            if weight.grad is not None:
                total.add_(weight.grad.detach())
        model.load_state_dict(self.initial)  # undo the step: weights (and BN statistics) as initialised
        self.scored += 1
        if self.scored == self.hparams.batches:
            self.scores = connection_sensitivity(prunable_weights(model), self.grads)
            self.masks = global_magnitude_masks(self.scores, 1.0 - 1.0 / self.target_compression)
            self.initial, self.grads = None, []

    def state_dict(self) -> dict[str, Any]:
        return {"scored": self.masks is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Checkpoints come at epoch ends, after scoring (batches <= steps per epoch)."""
        if state["scored"]:
            self.recover_masks()
            self.initial, self.grads = None, []
