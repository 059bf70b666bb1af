"""Metrics that make rows comparable (DESIGN.md, "Definitions").

prunable weights: weights of Conv and Linear layers. density = nonzero prunable weights /
prunable weights of the dense model. MACs count, per layer, torch's FlopCounterMode result
scaled by the layer's share of nonzero weights, so zeroed weights and removed channels cost
nothing. FLOPs = 2 x MACs.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE_TYPES)]


def count_prunable(model: nn.Module) -> tuple[int, int]:
    """(prunable weights, nonzero prunable weights) of the model as it is now."""
    total = nonzero = 0
    with torch.no_grad():
        for _, module in prunable_modules(model):
            weight = module.weight
            total += weight.numel()
            nonzero += int(torch.count_nonzero(weight))
    return total, nonzero


def density(nonzero: int, dense_total: int) -> float:
    return nonzero / dense_total


def compression_rate(density_value: float) -> float:
    return float("inf") if density_value == 0 else 1.0 / density_value


def count_macs(model: nn.Module, input_shape: Iterable[int]) -> int:
    """Multiply-accumulates of Conv/Linear layers for one input, counting only nonzero weights.

    `input_shape` excludes the batch dimension, e.g. (3, 32, 32)."""
    modules = prunable_modules(model)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        sample = torch.zeros(1, *input_shape, device=device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(sample)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    total = 0.0
    with torch.no_grad():
        for name, module in modules:
            flops = sum(counts.get(f"{root}.{name}", {}).values())
            weight = module.weight
            share = float(torch.count_nonzero(weight)) / weight.numel()
            total += flops / 2 * share
    return int(round(total))


def accuracy_counts(logits: torch.Tensor, labels: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of examples whose label is within the top-k predictions, for each k."""
    k_max = min(max(topk), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top.eq(labels.unsqueeze(1))
    return [int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in topk]


def epochs_to_sparsity(trail: list[dict], target_compression: float | None, tolerance: float = 0.01) -> int | None:
    """First epoch (1-based, all phases counted) whose hard-pruned model reaches the target
    compression within `tolerance` (relative); None if never or no target."""
    if target_compression is None:
        return None
    for entry in trail:
        if entry["compression"] >= target_compression * (1 - tolerance):
            return entry["epoch"]
    return None
