"""One training step and one evaluation pass: the code the training loop runs, and the code
`bench/method_overhead.py` times. The step's parts are labelled for torch.profiler."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from prunebench.core.device import DevicePlan, Worker
from prunebench.core.errors import RunFailed
from prunebench.core.metrics import accuracy_counts
from prunebench.harness.config import OptimizerConfig, ScheduleConfig
from prunebench.harness.phases import Phase


def learning_rate_factor(schedule: ScheduleConfig, progress: float, phase_epochs: int) -> float:
    """LR multiplier after `progress` epochs (fractional) of a phase lasting `phase_epochs`."""
    if schedule.warmup_epochs and progress < schedule.warmup_epochs:
        return (progress + 1e-3) / schedule.warmup_epochs
    if schedule.name == "cosine":
        span = max(1e-9, phase_epochs - schedule.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - schedule.warmup_epochs) / span)))
    if schedule.name == "step":
        passed = sum(progress >= m * phase_epochs for m in schedule.milestones)
        return schedule.gamma**passed
    return 1.0


def make_optimizer(settings: OptimizerConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The run's optimizer over the phase's parameter groups; each group keeps its base lr."""
    for group in groups:
        group["base_lr"] = group["lr"]
    if settings.name == "adam":
        return torch.optim.Adam(groups)
    return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=settings.momentum, nesterov=settings.nesterov)


def all_reduce_sum(values: list[float], worker: Worker, device: torch.device) -> list[float]:
    if worker.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


@dataclass
class Stepper:
    """Everything one optimizer step needs: the phase's hooks and schedule, the model (and its
    DDP wrapper, `trained`), the optimizer, the loss scaler, and where the step runs."""

    phase: Phase
    model: nn.Module
    trained: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    plan: DevicePlan
    worker: Worker
    steps_per_epoch: int

    def step(self, inputs: torch.Tensor, labels: torch.Tensor, step: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The phase's learning rate for this step (in its schedule cycle), forward, loss + the
        phase's penalty, divergence check, backward, optimizer step, the phase's after_step.
        `step` counts from 0 in the phase, `epoch` from 1 in the run. Returns (loss, logits)."""
        epochs_done, index = divmod(step, self.steps_per_epoch)
        progress = epochs_done + index / self.steps_per_epoch
        start, length = self.phase.schedule_cycle(progress)
        factor = learning_rate_factor(self.phase.schedule, progress - start, length)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        with self.plan.autocast():
            with record_function("forward"):
                logits = self.trained(inputs)
                loss = F.cross_entropy(logits.float(), labels)
            with record_function("penalty"):
                penalty = self.phase.penalty(self.model)
                objective = loss if penalty is None else loss + penalty
        self.check_finite(objective, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        with record_function("backward"):
            self.scaler.scale(objective).backward()
        with record_function("optimizer.step"):
            self.scaler.step(self.optimizer)
            self.scaler.update()
        with record_function("after_step"):
            self.phase.after_step(self.model, step)
        return loss.detach(), logits.detach()

    def check_finite(self, objective: torch.Tensor, epoch: int) -> None:
        """A diverged run stops at once; under DDP every worker learns of it in the same step."""
        value = objective.detach()
        finite = torch.isfinite(value).float()
        if self.worker.world_size > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not bool(finite):
            raise RunFailed(f"diverged in epoch {epoch}: training loss became {float(value):g}")


def evaluate(model: nn.Module, loader: Any, plan: DevicePlan, worker: Worker) -> dict[str, float]:
    """top-1 / top-5 / loss over a split; each worker sees its shard and counts are summed."""
    was_training = model.training
    model.eval()
    loss_sum = top1 = top5 = count = 0.0
    with torch.no_grad(), plan.autocast():
        for inputs, labels in loader:
            inputs, labels = inputs.to(plan.device), labels.to(plan.device)
            logits = model(inputs).float()
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            hits1, hits5 = accuracy_counts(logits, labels)
            top1, top5, count = top1 + hits1, top5 + hits5, count + len(labels)
    model.train(was_training)
    loss_sum, top1, top5, count = all_reduce_sum([loss_sum, top1, top5, count], worker, plan.device)
    if count == 0:
        raise RunFailed("evaluation split is empty")
    return {"loss": loss_sum / count, "top1": top1 / count, "top5": top5 / count}
