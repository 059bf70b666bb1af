"""Optimal Thresholding (Ye et al., "Channel Pruning via Optimal Thresholding").

Sparsity training as Network Slimming (eq. 2: lam * sum |gamma| over all BN scales). Then every
BN layer gets its own threshold from the cumulative sum of squares of its scales (eqs. 3-5,
delta = 1e-3) and channels with |gamma| below it are removed physically (Torch-Pruning). In
residual networks a global OT threshold (eq. 5 over all scales of the network) first removes
every branch whose last BN has all its scales below it (Sec. III-C, "Dealing with skip
connections").

Interpretation choices:
- eq. 5 is applied to |gamma| (BN scales can be negative; their sign does not make them important).
- eq. 5 is computed as the paper's algorithm states: sort ascending and take the first scale whose
  cumulative sum of squares, itself included, is >= delta * zeta. For distinct scales this is the
  unique gamma' of eq. 5 (squares strictly below gamma' sum to < delta * zeta); with ties at the
  boundary eq. 5 has no solution and the tied value is the threshold (all of them are kept).
- a layer's threshold is one of its own scales, so every layer keeps a channel.
- `residual: authors` (default): a BN feeding a residual add keeps all its channels, and so do
  the channels coupled to it; eq. 5 prunes only the other BNs. This is what the authors' code
  does (see `finalize`). Residual-coupled channels still go with a whole removed branch.
- `residual: vote`: a residual-coupled channel goes when every BN of its group falls below its
  own layer threshold (methods.channels), a stand-in for the paper's channel-selection layers
  (Sec. III-C) that removes channels instead of masking them.
- an add always keeps one input: if every input of an add is a branch below the global
  threshold (e.g. a downsampling block's residual and projection shortcut), the one with the
  largest last-BN scale stays.
- `round_to: N` (off by default, as in the paper) rounds every kept width up to a multiple of N,
  keeping back the removed channels with the largest |gamma|: every channel above a threshold
  still stays (methods.channels says why up). BNs that `residual: authors` leaves whole keep
  their dense widths; under `vote` a coupled group is rounded as one width.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from prunebench.methods.channels import (
    BatchNormSparsity,
    BatchNormSparsityHparams,
    Branch,
    ChannelGraph,
    batchnorms,
    branches_to_remove,
    is_scaled_batchnorm,
    remove_branches,
    scale_scores,
)  # fmt: skip
from prunebench.methods.registry import register


def optimal_threshold(gammas: torch.Tensor, delta: float = 1e-3) -> float:
    """Eq. 5: the smallest |gamma'| whose cumulative sum of squares (ascending, gamma' included)
    reaches delta * zeta, zeta = sum gamma^2 (eq. 3). Channels with |gamma| < threshold are pruned."""
    values = gammas.detach().abs().flatten().double().sort().values
    cumulative = values.square().cumsum(0)
    first = int(torch.searchsorted(cumulative, delta * cumulative[-1]))  # first index with cumsum >= delta * zeta
    return float(values[min(first, values.numel() - 1)])


class OTHparams(BatchNormSparsityHparams):
    lam: float = Field(
        default=2e-4, ge=0, description="L1 weight on BN scales (eq. 2); Table I sweeps it per architecture (ResNet-20/CIFAR-10: "
        "8e-4 to 4e-3; VGG-14: 1e-5 to 1e-3); 2e-4 is used for Table III and on ILSVRC-2012 (Sec. IV-B)"
    )
    delta: float = Field(default=1e-3, gt=0, lt=1, description="share of the sum of squares that may be pruned (eq. 5); Sec. III-C: 1e-3 for all experiments")
    branch_removal: bool = Field(default=True, description="remove residual branches whose last BN falls below the global OT threshold (Sec. III-C)")
    residual: Literal["authors", "vote"] = Field(
        default="authors", description="BNs feeding a residual add: 'authors' never prunes their channels (the OT authors' netslim "
        "code), 'vote' removes a coupled channel when every BN of its group is below its layer threshold"
    )


def _last_batchnorm(model: nn.Module, branch: Branch) -> nn.Module | None:
    """The BN closest to the add on the branch (layers are listed from the add backwards)."""
    layers = [model.get_submodule(name) for name in branch.layers]
    return next((layer for layer in layers if is_scaled_batchnorm(layer)), None)


@register
class OptimalThresholding(BatchNormSparsity):
    name = "ot"
    summary = "optimal thresholding: L1 on BN scales, per-layer thresholds from the cumulative sum of squares, branch removal (Ye et al.)"
    Hparams = OTHparams

    def finalize(self, model: nn.Module) -> nn.Module:
        graph = ChannelGraph(model, self.input_shape)
        removed = self._branches_below_global_threshold(model, graph) if self.hparams.branch_removal else []
        gone = {model.get_submodule(name) for branch in removed for name in branch.layers}
        # As the OT authors' code (yeyun11/netslim) does: graph_parser.get_pruning_layers leaves every BN whose
        # output reaches an add out of `succ_layers`, so prune.prune neither prunes nor masks it (masking is
        # replace_with_masked_norms, which thresholds each layer with thresholding.css_thresholding, eq. 5).
        fixed = graph.residual_batchnorms() if self.hparams.residual == "authors" else set()
        keep = {}
        for bn in batchnorms(model):
            if bn not in gone:
                magnitude = bn.weight.detach().abs()
                threshold = 0.0 if bn in fixed else optimal_threshold(magnitude, self.hparams.delta)  # 0 keeps every channel
                keep[bn] = magnitude >= threshold
        graph.prune_channels(keep, self.hparams.round_to, scale_scores(keep))
        return remove_branches(model, removed, self.input_shape)

    def _branches_below_global_threshold(self, model: nn.Module, graph: ChannelGraph) -> list[Branch]:
        """Sec. III-C: branches whose last BN lies entirely below eq. 5 applied to all scales."""
        threshold = optimal_threshold(torch.cat([bn.weight.detach().flatten() for bn in batchnorms(model)]), self.hparams.delta)

        def below(branch: Branch) -> bool:
            bn = _last_batchnorm(model, branch)
            return bn is not None and bool((bn.weight.detach().abs() < threshold).all())

        def importance(branch: Branch) -> float:
            return float(_last_batchnorm(model, branch).weight.detach().abs().max())

        return branches_to_remove(graph.residual_adds(), below, importance)
