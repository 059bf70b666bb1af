"""Global magnitude pruning (Han et al. 2015; the baseline of Blalock et al. 2020 and of LTP).

One threshold over all prunable weights: the smallest-|w| weights of the whole network are
removed until the run's target compression is met. `one_shot` prunes to the target when
the prune phase starts; `gradual` raises sparsity along the cubic schedule of Zhu & Gupta
(2017), s_t = s_f + (s_i - s_f) * (1 - t / t_end)^3, recomputing the masks every
`update_every` steps and holding them in between.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from core.errors import UserError
from core.metrics import prunable_modules
from methods.base import Hparams, PruningMethod
from methods.registry import register


class GlobalHparams(Hparams):
    schedule: Literal["one_shot", "gradual"] = Field(default="gradual", description="prune at once, or along the cubic schedule")
    initial_sparsity: float = Field(default=0.0, ge=0, lt=1, description="s_i of the cubic schedule (Zhu & Gupta)")
    ramp_fraction: float = Field(default=0.75, gt=0, le=1, description="share of the prune phase over which sparsity ramps up; the rest trains at the final sparsity")
    update_every: int = Field(default=10, gt=0, description="optimizer steps between mask updates (Zhu & Gupta's delta t)")


def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Boolean keep-masks removing the round(sparsity * N) smallest-|w| weights over all tensors,
    selected as torch.nn.utils.prune.global_unstructured does (one topk over the concatenation)."""
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    n_prune = int(round(sparsity * flat.numel()))
    keep = torch.ones_like(flat, dtype=torch.bool)
    if n_prune > 0:
        keep[torch.topk(flat, n_prune, largest=False).indices] = False
    return [part.view_as(w) for part, w in zip(keep.split([w.numel() for w in weights]), weights)]


def cubic_sparsity(step: int, ramp_steps: int, initial: float, final: float) -> float:
    """Zhu & Gupta (2017), eq. 1: sparsity after `step` of `ramp_steps`."""
    progress = min(1.0, step / max(1, ramp_steps))
    return final + (initial - final) * (1.0 - progress) ** 3


@register
class GlobalMagnitude(PruningMethod):
    name = "global"
    summary = "global magnitude pruning (Han et al.), one-shot or gradual with Zhu & Gupta's cubic schedule"
    phases = ("dense", "prune", "finetune")
    granularity = "unstructured"
    needs_target_compression = True
    Hparams = GlobalHparams

    def __init__(self, hparams: GlobalHparams) -> None:
        super().__init__(hparams)
        self.masks: list[torch.Tensor] = []
        self.current_sparsity = 0.0

    def setup(self, target_compression: float | None, prune_epochs: int, steps_per_epoch: int, input_shape: tuple[int, ...]) -> None:
        if target_compression is None:
            raise UserError("target_compression: method 'global' prunes to a target compression rate; set one (e.g. 4.0)")
        super().setup(target_compression, prune_epochs, steps_per_epoch, input_shape)

    @property
    def final_sparsity(self) -> float:
        return 1.0 - 1.0 / self.target_compression

    def _weights(self, model: nn.Module) -> list[torch.Tensor]:
        return [module.weight for _, module in prunable_modules(model)]

    def _prune_to(self, model: nn.Module, sparsity: float) -> None:
        weights = self._weights(model)
        self.masks = global_magnitude_masks(weights, sparsity)
        self.current_sparsity = sparsity
        self._apply_masks(weights)

    def _apply_masks(self, weights: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for weight, mask in zip(weights, self.masks):
                weight.mul_(mask)

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        initial = self.final_sparsity if self.hparams.schedule == "one_shot" else self.hparams.initial_sparsity
        self._prune_to(model, initial)
        return model

    def after_step(self, model: nn.Module, step: int) -> None:
        if self.hparams.schedule == "gradual" and (step + 1) % self.hparams.update_every == 0:
            ramp_steps = int(self.hparams.ramp_fraction * self.prune_epochs * self.steps_per_epoch)
            target = cubic_sparsity(step + 1, ramp_steps, self.hparams.initial_sparsity, self.final_sparsity)
            if target > self.current_sparsity:
                self._prune_to(model, target)
                return
        self._apply_masks(self._weights(model))

    def snapshot(self, model: nn.Module) -> nn.Module:
        """The masks are already applied: the model is its own hard-pruned snapshot."""
        return model

    def finalize(self, model: nn.Module) -> nn.Module:
        self._prune_to(model, self.final_sparsity)
        return model

    def state_dict(self) -> dict[str, Any]:
        return {"current_sparsity": self.current_sparsity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Masks are recovered from the restored weights: pruned weights are exactly zero."""
        self.current_sparsity = state["current_sparsity"]
        if self.model is not None:
            self.masks = [w.detach() != 0 for w in self._weights(self.model)]
