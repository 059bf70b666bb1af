"""Random unstructured pruning: the control every unstructured row is judged against (Blalock et
al., "What is the state of neural network pruning?", MLSys 2020, Sec. 4 and 7: random pruning at
the same layer profile; Liu et al., ICLR 2019, Sec. 6 compare pruned sparsity patterns with random
ones).

A dense model is trained, then every prunable layer l (Conv/Linear weights, the classifier
included) keeps k_l of its n_l weights, chosen uniformly at random, and the sparse model is
fine-tuned with its zeros held at zero:

    uniform (default):  k_l = n_l * d  rounded so that sum_l k_l = round(d * N),  d = 1 / target_compression
    match: RUN_ID:       k_l = that run's weights_nonzero of layer l (its record's `layers`)

so the density is met exactly, in total (largest remainders decide which layers round up) and,
matched, layer by layer. Every k_l-subset of a layer is equally likely. The draw comes from a seed
taken from the run's random state at set-up: another seed draws other masks, and a resumed run
draws the same ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunebench.core.metrics import prunable_modules
from prunebench.methods.matching import MatchHparams, MatchingMethod
from prunebench.methods.registry import register


def uniform_counts(sizes: list[int], density: float) -> list[int]:
    """Weights kept per layer: each layer its share density * n_l, rounded down, the rest of
    round(density * N) to the largest remainders (earliest layer on ties)."""
    shares = [density * size for size in sizes]
    counts = [int(share) for share in shares]
    left = round(density * sum(sizes)) - sum(counts)
    by_remainder = sorted(range(len(sizes)), key=lambda index: shares[index] - counts[index], reverse=True)
    for index in by_remainder[:left]:
        counts[index] += 1
    return counts


def random_masks(shapes: list[torch.Size], counts: list[int], generator: torch.Generator) -> list[torch.Tensor]:
    """Boolean keep-masks of the given shapes with exactly counts[i] True entries each, drawn uniformly."""
    masks = []
    for shape, count in zip(shapes, counts):
        flat = torch.zeros(shape.numel(), dtype=torch.bool)
        flat[torch.randperm(shape.numel(), generator=generator)[:count]] = True
        masks.append(flat.view(shape))
    return masks


@register
class RandomUnstructured(MatchingMethod):
    name = "random"
    summary = "random unstructured pruning at a target density, uniform over layers or at another run's layer profile (match)"
    phases = ("dense", "finetune")
    granularity = "unstructured"
    # the dense share of global and LTP (one shared dense stage), the rest fine-tuning
    budget_split = {"dense": 0.5, "finetune": 0.5}

    def __init__(self, hparams: MatchHparams) -> None:
        super().__init__(hparams)
        self.mask_seed = 0

    @property
    def needs_target_compression(self) -> bool:  # type: ignore[override]
        return self.hparams.match is None

    def setup(self, target_compression: float | None, prune_epochs: int, steps_per_epoch: int, input_shape: tuple[int, ...]) -> None:
        super().setup(target_compression, prune_epochs, steps_per_epoch, input_shape)
        self.mask_seed = int(torch.randint(2**62, ()))  # from the run's seeded random state

    def keep_counts(self, model: nn.Module) -> list[int]:
        layers = prunable_modules(model)
        if self.hparams.match is not None:
            return [self.matched[name].weights_nonzero for name, _ in layers]
        assert self.target_compression is not None
        return uniform_counts([module.weight.numel() for _, module in layers], 1.0 / self.target_compression)

    def finalize(self, model: nn.Module) -> nn.Module:
        weights = [module.weight for _, module in prunable_modules(model)]
        generator = torch.Generator().manual_seed(self.mask_seed)
        with torch.no_grad():
            for weight, mask in zip(weights, random_masks([w.shape for w in weights], self.keep_counts(model), generator)):
                weight.mul_(mask.to(weight.device))
        return model

    def state_dict(self) -> dict[str, Any]:
        return {"mask_seed": self.mask_seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mask_seed = state["mask_seed"]
