"""Parameterized Structured Pruning (Schindler et al., "Parameterized Structured Pruning for Deep
Neural Networks").

Every parametrised layer computes with q = w * nu(alpha) (eq. 2): one dense structure parameter
alpha per structure, hard-thresholded at epsilon in the forward pass (eq. 3) and updated through
a straight-through gradient (eq. 4), so a pruned structure can come back. alpha has its own
optimizer group whose weight decay drives unimportant structures towards zero (eq. 6). Structures
follow Table 1; alpha is laid out to broadcast over a weight W[K, C, *kernel]:

    column   alpha in R^{R x S x C}  shape (1, C, R, S)
    channel  alpha in R^C            shape (1, C, 1, 1)   (input channels, Fig. 1c)
    shape    alpha in R^{R x S}      shape (1, 1, R, S)
    layer    alpha in R              shape (1, 1, 1, 1)

Training runs from scratch (Sec. 4). At the end alpha is folded into the weights (q becomes the
weight; no parametrization is left) and structures go physically where the network allows it:
- a residual branch with an entirely zero layer no longer depends on its input: the branch is
  removed (methods.channels; what layer pruning means for residual networks, Sec. 3.2). What it
  still outputs (its last BN's shift and running-mean terms, and what passes an earlier zero
  layer) stays as a constant added at no MACs (`ConstantBranch`). Zero layers outside residual
  branches stay as zeros.
- input channels that a parametrised layer ignores entirely (channel granularity, or column
  granularity with every column of a channel pruned) are removed with Torch-Pruning, together
  with the outputs producing them when no other layer uses them.
- other column and shape zeros stay in the weights, where the harness counts them as removed
  (MACs scale by each layer's nonzero share).
Each step keeps the function: the eval-mode finalized model computes what the attached model
computed (the tests check it on every granularity): Sec. 3.2 folds alpha in for inference
"resulting in no extra memory or compute costs", and the paper has no fine-tuning to absorb a change.

Interpretation choices:
- alpha ~ N(0, 0.1^2): Sec. 4 says "zero-mean Gaussian with standard deviation 0.1". With the
  ResNet epsilon of 0.2, about 95% of the structures start below the threshold; the
  straight-through gradient brings back those the loss needs.
- eq. 5 and Table 1 write the alpha gradient as a sum of dE/dW; the chain rule through q = w * nu
  gives sum_j w_ij * dE/dq_ij, which autograd computes (and the tests check).
- the input layer (first Conv/Linear registered), the output layer (last) and layers whose name
  contains one of `exclude_names` (CIFAR 'shortcut', torchvision 'downsample', DenseNet
  'transition') stay dense by default, as in Sec. 4. Grouped convolutions stay dense too.
- `round_to: N` (not in the paper; off by default) rounds every kept width up to a multiple of
  N, keeping back the removable channels whose unthresholded weights w * alpha (summed per input
  channel) are largest: how close their structures came to the threshold. A channel kept back
  gets those weights back in the layer reading it; left at zero it would cost its MACs and do
  nothing, as fine-tuning holds zeros at zero. So with rounding the finalized model adds these
  sub-threshold structures to what the attached model computed; without it, it is exact.
  Rounding goes up, never down, so no structure above the threshold is lost (methods.channels).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils import parametrize

from prunebench.core.errors import UserError
from prunebench.core.metrics import prunable_modules
from prunebench.core.record import Histogram
from prunebench.methods.base import PruningMethod, remove_weight_parametrization
from prunebench.methods.channels import (
    Branch,
    ChannelGraph,
    ChannelRoundingHparams,
    branches_to_remove,
    check_removable,
    ensure_one,
    remove_branches,
)  # fmt: skip
from prunebench.methods.registry import register

Granularity = Literal["column", "channel", "shape", "layer"]
ALPHA_BINS = 20  # bins of the |alpha| histogram in the record


def threshold_ste(alpha: torch.Tensor, epsilon: float) -> torch.Tensor:
    """nu(alpha) of eq. 3 in the forward pass (0 where |alpha| < epsilon, alpha elsewhere) with the
    straight-through gradient of eq. 4: dE/dalpha = dE/dnu everywhere, inside the pruning interval too."""
    hard = alpha * (alpha.abs() >= epsilon)
    return alpha + (hard - alpha).detach()


def alpha_shape(weight_shape: torch.Size, granularity: Granularity) -> tuple[int, ...]:
    """Table 1's structure parameter, shaped to broadcast over W[K, C, *kernel]."""
    _, in_channels, *kernel = weight_shape
    ones = [1] * len(kernel)
    shapes = {
        "column": (1, in_channels, *kernel),
        "channel": (1, in_channels, *ones),
        "shape": (1, 1, *kernel),
        "layer": (1, 1, *ones),
    }
    return shapes[granularity]


class StructureParameter(nn.Module):
    """The parametrization q = w * nu(alpha) (eq. 2); it owns alpha."""

    def __init__(self, weight: torch.Tensor, granularity: Granularity, epsilon: float, std: float) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.randn(alpha_shape(weight.shape, granularity), device=weight.device) * std)
        self.epsilon = epsilon

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * threshold_ste(self.alpha, self.epsilon)


def fold(module: nn.Module) -> nn.Module:
    """Make q = w * nu(alpha) the layer's plain weight and drop the parametrization (alpha with it)."""
    remove_weight_parametrization(module, leave_parametrized=True)
    return module


def unthresholded(module: nn.Module) -> torch.Tensor:
    """w * alpha of a parametrised layer: its weight as eq. 2 would give it without the threshold,
    so a pruned structure still shows how close it came to staying."""
    weight = module.parametrizations.weight
    return (weight.original * weight[0].alpha).detach()


def input_usage(weight: torch.Tensor) -> torch.Tensor:
    """sum |w| per input channel of a Conv/Linear weight W[K, C, *kernel]: 0 where the layer ignores a channel."""
    return weight.abs().transpose(0, 1).flatten(1).sum(1)


class PSPHparams(ChannelRoundingHparams):
    granularity: Granularity = Field(
        default="column", description="structure per alpha (Table 1); Sec. 4.3 uses column pruning for all main results"
    )
    epsilon: float = Field(default=0.2, ge=0, description="pruning threshold of eq. 3; Sec. 4: 0.2 for ResNet, 0.1 for DenseNet")
    alpha_weight_decay: float = Field(
        default=1e-4, ge=0, description="lambda of eq. 6, weight decay on alpha (its own optimizer group); Sec. 4: 1e-4"
    )
    alpha_std: float = Field(default=0.1, gt=0, description="alpha ~ N(0, std^2) at the start; Sec. 4: standard deviation 0.1")
    include_input: bool = Field(default=False, description="also parametrise the input layer (Sec. 4 excludes it)")
    include_output: bool = Field(default=False, description="also parametrise the output layer (Sec. 4 excludes it)")
    exclude_names: list[str] = Field(
        default=["shortcut", "downsample", "transition"],
        description="layers whose qualified name contains one of these stay dense: shortcut and transition layers (Sec. 4)",
    )


@register
class PSP(PruningMethod):
    name = "psp"
    summary = "parameterized structured pruning: thresholded structure parameters with straight-through gradients and weight decay (Schindler et al.)"
    phases = ("prune", "finetune")
    granularity = "structured"
    budget_split = {"prune": 1.0}  # from scratch, alpha folded in at the end, no fine-tuning (Sec. 4)
    Hparams = PSPHparams

    def __init__(self, hparams: PSPHparams) -> None:
        super().__init__(hparams)
        self.layer_names: list[str] = []

    def _targets(self, model: nn.Module) -> list[str]:
        """Names of the Conv/Linear layers to parametrise, in registration order."""
        layers = prunable_modules(model)
        ends = set()
        if layers and not self.hparams.include_input:
            ends.add(layers[0][0])
        if layers and not self.hparams.include_output:
            ends.add(layers[-1][0])
        return [
            name for name, module in layers
            if name not in ends and not any(part in name for part in self.hparams.exclude_names) and getattr(module, "groups", 1) == 1
        ]  # fmt: skip

    def check_model(self, model: nn.Module) -> None:
        if not self._targets(model):
            raise UserError("method 'psp': model has no Conv or Linear layer to parametrise besides the excluded input, output and shortcut layers")
        check_removable(self.name, model)

    def attach(self, model: nn.Module) -> nn.Module:
        super().attach(model)
        self.layer_names = self._targets(model)
        for name in self.layer_names:
            module = model.get_submodule(name)
            structure = StructureParameter(module.weight, self.hparams.granularity, self.hparams.epsilon, self.hparams.alpha_std)
            parametrize.register_parametrization(module, "weight", structure)
        return model

    def structure_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [model.get_submodule(name).parametrizations.weight[0].alpha for name in self.layer_names]

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Weights with the run's decay; alpha in its own group with eq. 6's lambda."""
        assert self.model is not None, "attach() must run before param_groups()"
        alphas = self.structure_parameters(self.model)
        alpha_ids = {id(alpha) for alpha in alphas}
        weights = [p for p in self.model.parameters() if p.requires_grad and id(p) not in alpha_ids]
        return [
            {"params": weights, "lr": lr, "weight_decay": weight_decay},
            {"params": alphas, "lr": lr, "weight_decay": self.hparams.alpha_weight_decay},
        ]

    def histograms(self, model: nn.Module) -> list[Histogram]:
        """|alpha| of every structure at the end of pruning, from 0 to the largest (at least 2 epsilon):
        the bimodal split around epsilon that weight decay and the straight-through gradient make."""
        magnitudes = torch.cat([alpha.detach().abs().flatten() for alpha in self.structure_parameters(model)]).double().cpu()
        top = max(float(magnitudes.max()), 2 * self.hparams.epsilon) or 1.0
        counts, edges = torch.histogram(magnitudes, bins=ALPHA_BINS, range=(0.0, top))
        return [Histogram(name="|alpha| at the end of pruning", edges=[round(float(e), 6) for e in edges],
                          counts=[int(c) for c in counts], threshold=self.hparams.epsilon)]  # fmt: skip

    def finalize(self, model: nn.Module) -> nn.Module:
        """Fold alpha into the weights, then remove ignored input channels and zero branches, keeping
        each removed branch's constant output, so the finalized model computes what the attached one did
        (with `round_to`, up to the channels kept back: module docstring)."""
        raw = {name: unthresholded(model.get_submodule(name)) for name in self.layer_names}
        folded = {name: fold(model.get_submodule(name)) for name in self.layer_names}
        zero_layers = {name for name, module in folded.items() if not module.weight.any()}

        def has_zero_layer(branch: Branch) -> bool:
            return any(name in zero_layers for name in branch.layers)

        def nonzero(branch: Branch) -> float:
            return float(sum(int(torch.count_nonzero(folded[name].weight)) for name in branch.layers if name in folded))

        graph = ChannelGraph(model, self.input_shape)
        removed = branches_to_remove(graph.residual_adds(), has_zero_layer, nonzero)
        gone = {name for branch in removed for name in branch.layers}
        keep = {}
        for _, module in prunable_modules(model):  # unparametrised layers need all their inputs
            keep[module] = torch.ones(module.weight.shape[1], dtype=torch.bool, device=module.weight.device)
        for name, module in folded.items():
            if name in gone:
                del keep[module]
            else:
                usage = input_usage(module.weight.detach())
                keep[module] = ensure_one(usage > 0, usage)
        live = {name: module for name, module in folded.items() if name not in gone}
        scores = {module: input_usage(raw[name]) for name, module in live.items()}  # only these can vote a channel out

        def restore(kept_back: dict[nn.Module, torch.Tensor]) -> None:
            """Channels kept back for rounding get their unthresholded weights (module docstring)."""
            with torch.no_grad():
                for name, module in live.items():
                    module.weight[:, kept_back[module]] = raw[name][:, kept_back[module]]

        graph.prune_channels(keep, self.hparams.round_to, scores, on_kept_back=restore)
        return remove_branches(model, removed, self.input_shape, keep_constant=True)
