"""The phases of a run and what each asks of the method. The training loop calls the same
hooks in every phase; which of them the method answers is the phase's decision, not the loop's.

dense: the plain model. prune: the method attached (its parameter groups, penalty, schedules;
the trail shows its hard-pruned snapshot). finetune: the finalized model, its zeros held at zero.
"""

from __future__ import annotations

import pickle
from typing import Any

import torch
from torch import nn

from prunebench.core.device import Worker
from prunebench.core.metrics import prunable_modules
from prunebench.core.record import Histogram
from prunebench.harness.agreement import check_agreement
from prunebench.harness.config import PhaseConfig, RunConfig, ScheduleConfig
from prunebench.methods.base import PruningMethod


def state_version(model: nn.Module, method: PruningMethod) -> tuple:
    """Changes whenever the model's tensors or the method's state do: every in-place write bumps a
    tensor's version counter (optimizer steps, load_state_dict), a replaced tensor has a new id,
    and the method's (small) schedule state is compared whole, pickled (exact, tensors included)."""
    return tuple((id(t), t._version) for t in model.state_dict(keep_vars=True).values()), pickle.dumps(method.state_dict())


def plain_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr, "weight_decay": weight_decay}]


class Phase:
    """A phase spans epochs [start, end) of the run (0-based, all phases counted)."""

    name = "dense"

    def __init__(self, config: RunConfig, method: PruningMethod, worker: Worker, start: int) -> None:
        settings: PhaseConfig = getattr(config.phases, self.name)
        self.method, self.worker = method, worker
        self.start, self.end = start, start + settings.epochs
        self.lr = settings.lr or config.optimizer.lr
        self.schedule: ScheduleConfig = config.phase_schedule(self.name)

    @property
    def epochs(self) -> int:
        return self.end - self.start

    def enter(self, model: nn.Module) -> nn.Module:
        """The model this phase trains, made from the one the previous phase left."""
        return model

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        return plain_groups(model, self.lr, weight_decay)

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def after_step(self, model: nn.Module, step: int) -> None:
        """After every optimizer step; `step` counts from 0 in the phase."""

    def on_epoch_end(self, model: nn.Module, epoch: int, entry: dict[str, Any]) -> None:
        """After each epoch, with its trail entry."""

    def snapshot(self, model: nn.Module) -> nn.Module:
        """The hard-pruned model as it stands: what the trail evaluates."""
        return model

    def schedule_cycle(self, progress: float) -> tuple[float, int]:
        """(start, length) in epochs of the learning-rate cycle holding `progress` (epochs into
        the phase): the schedule runs once over the phase."""
        return 0.0, self.epochs


class DensePhase(Phase):
    name = "dense"

    def on_epoch_end(self, model: nn.Module, epoch: int, entry: dict[str, Any]) -> None:
        self.method.on_dense_epoch_end(model, epoch)


class PrunePhase(Phase):
    name = "prune"
    # The snapshot of the last epoch with the state it was made from, for the finetune phase:
    # where the method's snapshot is its finalize of a copy (the default), fine-tuning starts
    # from it instead of finalizing the same state again (seconds for a DenseNet).
    handoff: tuple[tuple, nn.Module] | None = None

    def enter(self, model: nn.Module) -> nn.Module:
        return self.method.attach(model)

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
        return self.method.param_groups(self.lr, weight_decay)

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return self.method.penalty(model)

    def after_step(self, model: nn.Module, step: int) -> None:
        self.method.after_step(model, step)

    def on_epoch_end(self, model: nn.Module, epoch: int, entry: dict[str, Any]) -> None:
        self.method.on_epoch_end(model, epoch, entry)
        if epoch < self.end:
            self.handoff = None  # only the last epoch's snapshot is kept

    def schedule_cycle(self, progress: float) -> tuple[float, int]:
        """The method's cycles (PruningMethod.schedule_cycles): IMP starts the schedule again each round."""
        start = 0
        for length in self.method.schedule_cycles(self.epochs):
            if progress < start + length:
                return float(start), length
            start += length
        return float(start - length), length

    def snapshot(self, model: nn.Module) -> nn.Module:
        snapshot = self.method.snapshot(model)
        finalizes_a_copy = type(self.method).snapshot is PruningMethod.snapshot
        self.handoff = (state_version(model, self.method), snapshot) if finalizes_a_copy else None
        return snapshot


class FinetunePhase(Phase):
    name = "finetune"
    histograms: list[Histogram] = []  # what the method reported of the pruned model before finalize

    def __init__(self, config: RunConfig, method: PruningMethod, worker: Worker, start: int, prune: PrunePhase) -> None:
        super().__init__(config, method, worker, start)
        self.prune = prune

    def enter(self, model: nn.Module) -> nn.Module:
        """The finalized model: the prune phase's last snapshot when model and method are as it was
        made from (PrunePhase.handoff), else finalized here (a run resumed in fine-tuning)."""
        device = next(model.parameters()).device
        self.histograms = self.method.histograms(model)
        handoff, self.prune.handoff = self.prune.handoff, None
        if handoff is not None and handoff[0] == state_version(model, self.method):
            model = handoff[1].to(device)
        else:
            model = self.method.finalize(model).to(device)
        check_agreement(model, self.worker)  # every DDP rank must fine-tune the same pruned model
        self.keep_masks = [module.weight.detach() != 0 for _, module in prunable_modules(model)]
        return model

    def after_step(self, model: nn.Module, step: int) -> None:
        with torch.no_grad():
            for (_, module), mask in zip(prunable_modules(model), self.keep_masks):
                module.weight.mul_(mask)


def run_phases(config: RunConfig, method: PruningMethod, worker: Worker) -> list[Phase]:
    """The three phases in order, each starting where the previous one ends."""
    dense = DensePhase(config, method, worker, 0)
    prune = PrunePhase(config, method, worker, dense.end)
    return [dense, prune, FinetunePhase(config, method, worker, prune.end, prune)]
