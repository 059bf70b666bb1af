"""Network Slimming (Liu et al., ICCV 2017, "Learning Efficient Convolutional Networks through
Network Slimming"; the paper's text is not in shared/papers, section references are to the ICCV
version).

Sparsity training adds lam * sum |gamma| over the scales of every BatchNorm layer (the paper adds
the subgradient lam * sign(gamma); autograd of |gamma| is the same). Then one global threshold
over all scales prunes the `prune_ratio` share of channels with the smallest |gamma| and the
channels are removed physically (Torch-Pruning); the smaller network is fine-tuned.

Interpretation choices:
- the threshold is the |gamma| of rank round(prune_ratio * n) in ascending order (0-based) and
  channels strictly below it are pruned: exactly round(prune_ratio * n) channels when the scales
  are distinct (the paper's "prune 70% of the channels"); ties at the threshold are kept.
- a layer always keeps its largest-|gamma| channel, so pruning never cuts the network (OT
  Sec. III-B and IV-D report NS's global threshold removing whole layers of VGG-14).
- channels tied by residual adds form one DepGraph group and go only when every BN of the group
  falls below the threshold (see methods.channels).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from methods.channels import BatchNormSparsity, BatchNormSparsityHparams, batchnorms, ensure_one, prune_channels
from methods.registry import register


def global_threshold(gammas: torch.Tensor, prune_ratio: float) -> float:
    """The NS threshold over all scales: the |gamma| at ascending rank round(prune_ratio * n).
    Channels with |gamma| < threshold are pruned; prune_ratio 0 gives the smallest |gamma|
    (nothing pruned)."""
    values = gammas.detach().abs().flatten().sort().values
    rank = min(round(prune_ratio * values.numel()), values.numel() - 1)
    return float(values[rank])


class NSHparams(BatchNormSparsityHparams):
    lam: float = Field(
        default=1e-5, ge=0, description="L1 weight on BN scales; Sec. 4.3 (CIFAR, SVHN): 1e-4 for VGGNet, 1e-5 for ResNet and DenseNet"
    )
    prune_ratio: float = Field(
        default=0.4, ge=0, lt=1, description="share of all channels pruned by the global threshold; Table 1: 40% (ResNet-164, "
        "DenseNet-40), 70% (VGGNet) on CIFAR-10"
    )


@register
class NetworkSlimming(BatchNormSparsity):
    name = "ns"
    summary = "network slimming: L1 on BN scales, one global percentile threshold, channels removed (Liu et al. 2017)"
    Hparams = NSHparams

    def finalize(self, model: nn.Module) -> nn.Module:
        layers = batchnorms(model)
        threshold = global_threshold(torch.cat([bn.weight.detach().flatten() for bn in layers]), self.hparams.prune_ratio)
        keep = {}
        for bn in layers:
            magnitude = bn.weight.detach().abs()
            keep[bn] = ensure_one(magnitude >= threshold, magnitude)
        return prune_channels(model, keep, self.input_shape)
