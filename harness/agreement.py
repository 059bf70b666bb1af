"""All DDP ranks of a run must hold the same pruned model after finalize.

DDP keeps the weights in step, but a method's finalize decides masks and kept channels on each
rank by itself (thresholds, scores, a random tie-break); ranks that disagree would train and
report different models. Each rank digests every prunable layer (its shape, which holds the
kept channels, and its mask of nonzero weights); the digests are gathered across the process
group, and any difference fails the run naming the first layer that differs.
"""

from __future__ import annotations

import hashlib
from itertools import zip_longest

import torch
import torch.distributed as dist
from torch import nn

from prunebench.core.device import Worker
from prunebench.core.errors import RunFailed
from prunebench.core.metrics import prunable_modules


def layer_digests(model: nn.Module) -> list[tuple[str, str]]:
    """(layer name, digest of its shape and nonzero mask) for every prunable layer, in order."""
    digests = []
    with torch.no_grad():
        for name, module in prunable_modules(model):
            mask = (module.weight.detach() != 0).flatten().cpu().numpy()
            digest = hashlib.sha256(repr(tuple(module.weight.shape)).encode())
            digest.update(mask.tobytes())
            digests.append((name, digest.hexdigest()))
    return digests


def first_difference(ranks: list[list[tuple[str, str]]]) -> str | None:
    """The first layer on which some rank differs from rank 0, as a message; None if all agree."""
    for rank, digests in enumerate(ranks[1:], start=1):
        for mine, theirs in zip_longest(ranks[0], digests):
            if mine != theirs:
                return f"layer {(mine or theirs)[0]}: rank {rank} holds other masks or kept channels than rank 0"
    return None


def check_agreement(model: nn.Module, worker: Worker) -> None:
    """A collective (every rank calls it): raise RunFailed, on every rank, if the ranks' pruned
    models differ. A run of one rank agrees with itself."""
    if worker.world_size == 1:
        return
    ranks: list[list[tuple[str, str]]] = [[] for _ in range(worker.world_size)]
    dist.all_gather_object(ranks, layer_digests(model))
    difference = first_difference(ranks)
    if difference is not None:
        raise RunFailed(f"DDP ranks disagree after finalize: {difference}")
