"""Network Slimming (Liu et al., ICCV 2017, "Learning Efficient Convolutional Networks through
Network Slimming"; the paper's text is not in shared/papers, section references are to the ICCV
version).

Sparsity training adds lam * sum |gamma| over the scales of every BatchNorm layer (the paper adds
the subgradient lam * sign(gamma); autograd of |gamma| is the same). Then the channels with the
smallest |gamma| are pruned, `prune_ratio` of all BN channels of the network, and removed
physically (Torch-Pruning); the smaller network is fine-tuned.

Interpretation choices:
- `prune_ratio` is the share of BN channels actually removed. In a residual network DepGraph
  couples the same channel of every BN feeding one add (`methods.channels.ChannelGraph.coupled_channels`), and
  such a group goes whole or not at all. A percentile over single channels therefore removes far
  less than asked (ResNet-20, uniform scales: 0.4 -> 17.5%). Instead groups are removed in
  ascending order of their score until round(prune_ratio * n) of the n BN channels are gone; a
  group of k coupled BNs counts k, so the last group may overshoot by k - 1 channels.
- a group's score is the largest |gamma| of its members. Removing groups in that order is NS's
  single global threshold, raised until enough channels are gone: a group goes only once every
  one of its channels is below the threshold, so no channel goes while a larger one stays. A
  mean or sum would remove a channel with a large scale because its partners are small (mean),
  or spare small groups of many tiny scales for their size (sum). A plain conv-BN channel is its
  own group, scored by its |gamma|, as in the paper; ties go in graph order.
- a layer always keeps a channel: a group that would empty a BN layer is skipped and the count
  is made up from the next groups (OT Sec. III-B and IV-D report NS's global threshold removing
  whole layers of VGG-14). So a ratio that would empty a layer is handled, not refused; only a
  ratio beyond "all but one channel per layer" removes less than asked.
- `round_to: N` (off by default, as in the paper) rounds every kept width up to a multiple of N
  after the selection, keeping back the removed channels with the largest |gamma| (of a coupled
  group: its largest, as above); NS then removes less than `prune_ratio`, by at most N - 1
  channels per group (methods.channels says why up).
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
from pydantic import Field
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunebench.methods.channels import (
    BatchNormSparsity,
    BatchNormSparsityHparams,
    Channel,
    ChannelGraph,
    batchnorms,
    scale_scores,
)  # fmt: skip
from prunebench.methods.registry import register


def group_score(group: Sequence[Channel]) -> float:
    """The largest |gamma| of a group of coupled channels (why the largest: module docstring)."""
    return max(abs(float(bn.weight.detach()[channel])) for bn, channel in group)


def slimming_masks(layers: Sequence[_BatchNorm], groups: Sequence[Sequence[Channel]], prune_ratio: float) -> dict[_BatchNorm, torch.Tensor]:
    """Keep masks over the channels of `layers` that remove whole `groups`, lowest `group_score`
    first, until round(prune_ratio * n) of their n channels are marked; a group that would leave a
    layer without a channel is skipped."""
    target = round(prune_ratio * sum(bn.num_features for bn in layers))
    keep = {bn: torch.ones(bn.num_features, dtype=torch.bool) for bn in layers}
    left = {bn: bn.num_features for bn in layers}
    removed = 0
    for group in sorted(groups, key=group_score):
        if removed >= target:
            break
        per_layer = Counter(bn for bn, _ in group)
        if any(left[bn] <= count for bn, count in per_layer.items()):
            continue
        for bn, channel in group:
            keep[bn][channel] = False
        for bn, count in per_layer.items():
            left[bn] -= count
        removed += len(group)
    return keep


class NSHparams(BatchNormSparsityHparams):
    lam: float = Field(
        default=1e-5, ge=0, description="L1 weight on BN scales; Sec. 4.3 (CIFAR, SVHN): 1e-4 for VGGNet, 1e-5 for ResNet and DenseNet"
    )
    prune_ratio: float = Field(
        default=0.4, ge=0, lt=1, description="share of all BN channels removed, smallest |gamma| first; Table 1: 40% (ResNet-164, "
        "DenseNet-40), 70% (VGGNet) on CIFAR-10"
    )


@register
class NetworkSlimming(BatchNormSparsity):
    name = "ns"
    summary = "network slimming: L1 on BN scales, one global |gamma| threshold, channels removed (Liu et al. 2017)"
    Hparams = NSHparams

    def finalize(self, model: nn.Module) -> nn.Module:
        graph = ChannelGraph(model, self.input_shape)
        keep = slimming_masks(batchnorms(model), graph.coupled_channels(), self.hparams.prune_ratio)
        return graph.prune_channels(keep, self.hparams.round_to, scale_scores(keep))
