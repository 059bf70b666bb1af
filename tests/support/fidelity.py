"""Shared by the fidelity tests: a finalized model must compute what its method says it computes.

BatchNorms get random nonzero scales, shifts and running statistics, so that a dropped constant
(a removed branch's BN shift and running-mean terms) or a wrongly removed channel changes the
output; with torch's defaults (shift 0, running mean 0) many such mistakes would go unseen.
Outputs are compared by their largest deviation relative to the largest reference logit, a
measure that does not blow up on logits near zero."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from prunebench.harness import models

SHAPE = (3, 32, 32)
MODELS = ("resnet20", "resnet56", "vgg14_bn", "resnet18")  # resnet18: torchvision's, with `downsample` shortcuts


def create_model(name: str, seed: int = 0) -> nn.Module:
    """harness model `name` (10 classes, CIFAR geometry, seeded init) in eval mode."""
    torch.manual_seed(seed)
    return models.create(name, 10).eval()


def random_inputs(generator: torch.Generator, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *SHAPE, generator=generator)


def randomize_batchnorms(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Random BN scales in [0.5, 1.5] and shifts in [-0.5, 0.5]; running statistics measured on 8
    random inputs, as training would leave them, so activations keep their scale through deep
    chains and the output depends on the input; then jittered (means +- 0.2, variances x [0.8, 1.25]
    + 0.05), so a BN behind an all-zero layer has running-mean terms too. Call it on the model as
    it will be evaluated (methods attached, their parameters set); in place, returns the model."""
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5, generator=generator)
            bn.bias.uniform_(-0.5, 0.5, generator=generator)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: after one batch, the batch's statistics
        model.train()(random_inputs(generator, batch=8))
        model.eval()
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
            bn.running_mean.add_(torch.empty_like(bn.running_mean).uniform_(-0.2, 0.2, generator=generator))
            bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.8, 1.25, generator=generator)).add_(0.05)
    return model


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's eval-mode output (BN running statistics), without autograd."""
    with torch.no_grad():
        return model.eval()(x)


def relative_deviation(output: torch.Tensor, reference: torch.Tensor) -> float:
    """max |output - reference| / max |reference|."""
    assert output.shape == reference.shape, (output.shape, reference.shape)
    return float((output - reference).abs().max() / reference.abs().max())
