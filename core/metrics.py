"""Metrics that make rows comparable (the README's "Metrics" section).

prunable weights: weights of Conv and Linear layers. density = nonzero prunable weights /
prunable weights of the dense model. MACs count, per layer, torch's FlopCounterMode result
scaled by the layer's share of nonzero weights, so zeroed weights and removed channels cost
nothing. FLOPs = 2 x MACs.
"""

from __future__ import annotations

import math
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


def compression_rate(density_value: float) -> float:
    return float("inf") if density_value == 0 else 1.0 / density_value


def layer_macs(model: nn.Module, input_shape: Iterable[int]) -> dict[str, int]:
    """Multiply-accumulates of each Conv/Linear layer for one input, counting only nonzero
    weights. `input_shape` excludes the batch dimension, e.g. (3, 32, 32)."""
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
    macs = {}
    with torch.no_grad():
        for name, module in modules:
            flops = sum(counts.get(f"{root}.{name}", {}).values())
            weight = module.weight
            share = float(torch.count_nonzero(weight)) / weight.numel()
            macs[name] = int(round(flops / 2 * share))
    return macs


def count_macs(model: nn.Module, input_shape: Iterable[int]) -> int:
    """Multiply-accumulates of the Conv/Linear layers for one input (see `layer_macs`)."""
    return sum(layer_macs(model, input_shape).values())


def layer_facts(model: nn.Module, input_shape: Iterable[int]) -> dict[str, dict[str, int | str]]:
    """Per prunable layer: kind, live output channels, weights, nonzero weights and MACs.
    A channel is live when any of its weights is nonzero (a zeroed or removed one costs nothing)."""
    macs = layer_macs(model, input_shape)
    facts = {}
    with torch.no_grad():
        for name, module in prunable_modules(model):
            weight = module.weight
            rows = weight.reshape(weight.shape[0], -1)
            facts[name] = {
                "kind": "linear" if isinstance(module, nn.Linear) else "conv",
                "out_channels": int((rows != 0).any(dim=1).sum()),
                "weights": weight.numel(),
                "weights_nonzero": int(torch.count_nonzero(weight)),
                "macs": macs[name],
            }
    return facts


def compare_layers(dense: dict[str, dict], final: dict[str, dict]) -> list[dict[str, int | str]]:
    """One entry per layer of the dense model, beside what is left of it in the final model
    (a layer that was removed keeps no channel, weight or MAC)."""
    entries = []
    for name, before in dense.items():
        after = final.get(name, {"out_channels": 0, "weights_nonzero": 0, "macs": 0})
        entries.append({
            "name": name,
            "kind": before["kind"],
            "out_channels_dense": before["out_channels"],
            "out_channels": after["out_channels"],
            "weights_dense": before["weights"],
            "weights_nonzero": after["weights_nonzero"],
            "macs_dense": before["macs"],
            "macs": after["macs"],
        })  # fmt: skip
    return entries


def accuracy_counts(logits: torch.Tensor, labels: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of examples whose label is within the top-k predictions, for each k."""
    k_max = min(max(topk), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hits = top.eq(labels.unsqueeze(1))
    return [int(hits[:, : min(k, k_max)].any(dim=1).sum()) for k in topk]


def epochs_to_sparsity(trail: list[dict], target_compression: float | None, tolerance: float = 0.01) -> int | None:
    """First epoch (1-based, all phases counted) whose hard-pruned model reaches the target
    compression within `tolerance` (relative); None if never or no target."""
    if target_compression is None or not math.isfinite(target_compression):
        return None
    for entry in trail:
        compression = entry.get("compression")
        if compression is not None and compression >= target_compression * (1 - tolerance):
            return entry["epoch"]
    return None
