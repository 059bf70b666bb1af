"""Training under fixed weight masks, shared by the methods that prune during the prune phase and
train on with their zeros held (SNIP after scoring, IMP between rounds): the masks are applied
after every optimizer step, the model is its own hard-pruned snapshot, and a resumed run finds its
masks again in its weights (a pruned weight is exactly zero)."""

from __future__ import annotations

import torch
from torch import nn

from prunebench.core.metrics import prunable_modules
from prunebench.methods.base import PruningMethod


def prunable_weights(model: nn.Module) -> list[torch.Tensor]:
    return [module.weight for _, module in prunable_modules(model)]


class MaskedTraining(PruningMethod):
    masks: list[torch.Tensor] | None = None  # None: no masks yet (SNIP before it has scored)

    def apply_masks(self, model: nn.Module) -> None:
        if self.masks is None:
            return
        with torch.no_grad():
            for weight, mask in zip(prunable_weights(model), self.masks):
                weight.mul_(mask)

    def after_step(self, model: nn.Module, step: int) -> None:
        self.apply_masks(model)

    def snapshot(self, model: nn.Module) -> nn.Module:
        """The masks are already applied: the model is its own hard-pruned snapshot."""
        return model

    def finalize(self, model: nn.Module) -> nn.Module:
        self.apply_masks(model)
        return model

    def recover_masks(self) -> None:
        """The masks of a restored model: its nonzero weights."""
        if self.model is not None:
            self.masks = [weight.detach() != 0 for weight in prunable_weights(self.model)]
