"""Filter pruning of a trained model, one-shot, then fine-tuning: L1-norm filters (Li et al.,
"Pruning Filters for Efficient ConvNets", ICLR 2017) and its random control (random channels,
Blalock et al., MLSys 2020; Liu et al., ICLR 2019). Both remove channels through the channel graph
NS and OT use (methods.channels.ChannelGraph) and score them with Torch-Pruning's importance
criteria.

Li et al., Sec. 3.1: filter j of layer i scores s_j = sum_l |K_l| (the sum of the absolute kernel
weights of F_{i,j}, its L1 norm); in each layer the m filters with the smallest s_j are removed,
with the feature maps they make and the kernels of the next layer that read them. Here that is
Torch-Pruning's MagnitudeImportance(p=1, normalizer=None, group_reduction="first"): the L1 norm of
the filters of the layer that roots each channel group (its own filters, not the BN or the next
layer's kernels). Random channels scores every channel with RandomImportance (uniform), so which
channels go is random but how many is the same.

How many channels a layer keeps:
    prune_ratio p (default):  width - round(p * width), the same share in every layer (Li et al.
                              Sec. 4 prune one ratio per stage of layers chosen by sensitivity;
                              one ratio for all is the simple baseline)
    match: RUN_ID:            the width that run kept of the layer (its record's `layers`), so a
                              structured method is compared with L1 / random at its own widths

Choices:
- all scores are computed before anything is removed: Li et al.'s "independent" strategy
  (Sec. 3.3), each layer ranked without regard to what the previous layer lost.
- `prune_residual: false` (default): layers whose outputs feed a residual add with other layers'
  (coupled by DepGraph) keep every channel, as Li et al. prune "only the first layer of each
  residual block" of their CIFAR ResNets (Sec. 4.2). Under `match` every layer takes the matched
  width, residual ones included (a run such as NS removes those too).
- a layer always keeps one channel; the classifier's outputs (the classes) are never removed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from prunebench.core.metrics import prunable_modules
from prunebench.methods.channels import ChannelGraph, Importance, check_removable, prune_to_layers
from prunebench.methods.matching import MatchHparams, MatchingMethod
from prunebench.methods.registry import register


class FilterHparams(MatchHparams):
    prune_ratio: float = Field(
        default=0.5, ge=0, lt=1, description="share of each layer's channels removed (without match); Li et al. choose it per layer "
        "by sensitivity (Sec. 3.2; ResNet-56-B: 60%, 30% and 10% of the first layers of the blocks of stages 1-3, Sec. 4.2)"
    )
    prune_residual: bool = Field(
        default=False, description="also prune layers coupled through residual adds; Li et al. (Sec. 4.2) prune only the first layer of each block"
    )


class FilterPruning(MatchingMethod):
    """One-shot removal of the lowest-scoring channels of every layer at the start of fine-tuning."""

    phases = ("dense", "finetune")
    granularity = "structured"
    # the dense share of global and LTP (one shared dense stage), the rest fine-tuning
    budget_split = {"dense": 0.5, "finetune": 0.5}
    Hparams = FilterHparams
    criterion: ClassVar[str]

    def __init__(self, hparams: FilterHparams) -> None:
        super().__init__(hparams)
        self.score_seed = 0

    def setup(self, target_compression: float | None, prune_epochs: int, steps_per_epoch: int, input_shape: tuple[int, ...]) -> None:
        super().setup(target_compression, prune_epochs, steps_per_epoch, input_shape)
        self.score_seed = int(torch.randint(2**62, ()))  # from the run's seeded random state: resumed runs score alike

    def check_model(self, model: nn.Module) -> None:
        super().check_model(model)
        check_removable(self.name, model)

    def importance(self) -> Importance:
        raise NotImplementedError

    def widths(self, model: nn.Module, graph: ChannelGraph) -> dict[str, int]:
        """The output channels each layer keeps, by layer name (module docstring)."""
        if self.hparams.match is not None:
            return {name: layer.out_channels for name, layer in self.matched.items()}
        ratio, names = self.hparams.prune_ratio, {module: name for name, module in prunable_modules(model)}
        widths = {}
        for group in graph.groups:
            if self.hparams.prune_residual or not graph.couples_outputs(group):
                width = len(group[0].root_idxs)
                widths[names[group[0].dep.target.module]] = width - round(ratio * width)
        return widths

    def finalize(self, model: nn.Module) -> nn.Module:
        graph = ChannelGraph(model, self.input_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.score_seed)
            return prune_to_layers(graph, self.widths(model, graph), self.input_shape, self.importance())

    def state_dict(self) -> dict[str, Any]:
        return {"score_seed": self.score_seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.score_seed = state["score_seed"]


@register
class L1Filters(FilterPruning):
    name = "l1_filters"
    summary = "L1-norm filter pruning (Li et al. 2017): per layer the filters of smallest L1 norm removed, one-shot, fine-tuned"

    def importance(self) -> Importance:
        import torch_pruning as tp

        return tp.importance.MagnitudeImportance(p=1, normalizer=None, group_reduction="first")


@register
class RandomChannels(FilterPruning):
    name = "random_channels"
    summary = "random channel pruning: as many channels per layer as a ratio or another run (match), chosen at random"

    def importance(self) -> Importance:
        import torch_pruning as tp

        return tp.importance.RandomImportance()
