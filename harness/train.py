"""The training loop: one run, its phases, per-epoch trail, one final test evaluation.

Readable top to bottom: `train` builds data, model and method, then runs the phases
dense -> (attach) -> prune -> (finalize) -> finetune. The same function runs in-process
(`prunebench run`) and inside each Ray Train worker; where it runs is described by a
`Worker`, checkpoints go through a `CheckpointStore`, and progress is reported to callbacks.
"""

from __future__ import annotations

import math
import platform
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import methods
from harness import datasets, models
from harness.config import PHASES, RunConfig
from harness.device import DevicePlan, plan_device
from harness.errors import RunFailed, UserError
from harness.metrics import accuracy_counts, compression_rate, count_macs, count_prunable, epochs_to_sparsity, prunable_modules
from harness.results import STATUS_FAILED, STATUS_FINISHED


@dataclass(frozen=True)
class Worker:
    """Where this process sits in a run: rank 0 of 1 in-process, or one DDP worker under Ray."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


class CheckpointStore(Protocol):
    """Saves the state after every epoch and returns the latest one on restart.
    `save` is called by every worker (Ray needs equal report counts); only rank 0 persists."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any], metrics: dict[str, Any]) -> None: ...


EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class RunState:
    """What a checkpoint restores: epochs done, the trail, elapsed time, the pre-finalize weights."""

    epoch: int = 0
    trail: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0  # training seconds, across restarts
    elapsed_before_restart: float = 0.0  # of that, what earlier processes spent
    prefinalize: dict[str, torch.Tensor] | None = None

    def wall_seconds(self, began: float) -> float:
        """This process's time since `began` plus what earlier processes of the run spent."""
        return round(self.elapsed_before_restart + time.perf_counter() - began, 3)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def learning_rate_factor(config: RunConfig, progress: float, phase_epochs: int) -> float:
    """LR multiplier after `progress` epochs (fractional) of a phase lasting `phase_epochs`."""
    schedule = config.schedule
    if schedule.warmup_epochs and progress < schedule.warmup_epochs:
        return (progress + 1e-3) / schedule.warmup_epochs
    if schedule.name == "cosine":
        span = max(1e-9, phase_epochs - schedule.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - schedule.warmup_epochs) / span)))
    if schedule.name == "step":
        passed = sum(progress >= m * phase_epochs for m in schedule.milestones)
        return schedule.gamma**passed
    return 1.0


def make_optimizer(config: RunConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    for group in groups:
        group["base_lr"] = group["lr"]
    opt = config.optimizer
    if opt.name == "adam":
        return torch.optim.Adam(groups)
    return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=opt.momentum, nesterov=opt.nesterov)


def plain_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr, "weight_decay": weight_decay}]


def all_reduce_sum(values: list[float], worker: Worker, device: torch.device) -> list[float]:
    if worker.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def evaluate(model: nn.Module, loader: Any, plan: DevicePlan, worker: Worker) -> dict[str, float]:
    """top-1 / top-5 / loss over a split; each worker sees its shard and counts are summed."""
    was_training = model.training
    model.eval()
    loss_sum = top1 = top5 = count = 0.0
    with torch.no_grad(), torch.autocast(plan.device.type, dtype=plan.amp_dtype or torch.float32, enabled=plan.amp_dtype is not None):
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


class Trainer:
    """Holds what every phase shares; `train()` below drives it."""

    def __init__(self, config: RunConfig, worker: Worker, checkpoints: CheckpointStore | None, callbacks: list[EpochCallback]) -> None:
        self.config, self.worker, self.checkpoints, self.callbacks = config, worker, checkpoints, callbacks
        self.plan = plan_device(config.amp, worker.local_rank)
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.splits = datasets.build_splits(config.data)
        if config.data.layout == "flat" and config.model.name != "lenet_300_100":
            raise UserError(f"data.layout: flat vectors only fit lenet_300_100, not {config.model.name}")
        self.loaders = self._loaders()
        self.input_shape = (self.splits.in_channels * self.splits.image_size**2,) if config.data.layout == "flat" else (
            self.splits.in_channels, self.splits.image_size, self.splits.image_size)  # fmt: skip
        self.model = models.create(config.model.name, self.splits.num_classes, self.splits.in_channels, self.splits.image_size, config.model.init)
        if config.model.pretrained:
            models.load_pretrained(self.model, config.model.name, config.model.pretrained)
        self.method = methods.create(config.method.name, **config.method.hparams)
        self.method.check_model(self.model)
        self.prunable_dense, _ = count_prunable(self.model)
        self.params_dense = sum(p.numel() for p in self.model.parameters())
        self.macs_dense = count_macs(self.model, self.input_shape)
        self.model.to(self.plan.device)
        steps = len(self.loaders.train)
        if steps == 0:
            raise UserError(f"data.batch_size: {config.data.batch_size} is larger than the training split")
        self.method.setup(config.target_compression, config.phases.prune.epochs, steps, self.input_shape)
        self.state = RunState()
        self.keep_masks: list[torch.Tensor] = []
        self.progress: tqdm | None = None

    def _loaders(self) -> datasets.Loaders:
        if self.config.data.loader == "dali":
            from harness.dali import make_dali_loaders

            return make_dali_loaders(self.config.data, self.plan, self.config.seed, self.worker)
        return datasets.make_loaders(self.splits, self.config.data, self.config.seed, self.worker.rank, self.worker.world_size)

    # --- phases --------------------------------------------------------------------------

    def run(self) -> nn.Module:
        phases = {name: getattr(self.config.phases, name).epochs for name in PHASES}
        resume = self.checkpoints.load() if self.checkpoints else None
        if resume:
            self.state = RunState(resume["epoch"], resume["trail"], resume["elapsed"], resume["elapsed"], resume.get("prefinalize"))
        elif self.config.phases.dense_done:
            self.state.epoch = phases["dense"]  # model.pretrained is this dense phase's outcome
        total = sum(phases.values())
        if self.worker.is_chief:
            self.progress = tqdm(total=total, initial=self.state.epoch, desc=self.config.run_id(), unit="epoch", file=sys.stderr, leave=False)
        dense_end, prune_end = phases["dense"], phases["dense"] + phases["prune"]

        if resume and resume["epoch"] <= dense_end:
            self.model.load_state_dict(resume["model"])
        self._run_epochs("dense", self.model, 0, dense_end, resume)

        self.model = self.method.attach(self.model)
        if resume and dense_end < resume["epoch"] <= prune_end:
            self.model.load_state_dict(resume["model"])
            self.method.load_state_dict(resume["method"])
        self._run_epochs("prune", self.model, dense_end, prune_end, resume)

        if resume and resume["epoch"] > prune_end:
            self.model.load_state_dict(self.state.prefinalize)
            self.method.load_state_dict(resume["method"])
        elif phases["finetune"]:
            self.state.prefinalize = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model = self.method.finalize(self.model).to(self.plan.device)
        if resume and resume["epoch"] > prune_end:
            self.model.load_state_dict(resume["model"])
        self.keep_masks = [m.weight.detach() != 0 for _, m in prunable_modules(self.model)]
        self._run_epochs("finetune", self.model, prune_end, prune_end + phases["finetune"], resume)
        if self.progress:
            self.progress.close()
        return self.model

    def _run_epochs(self, phase: str, model: nn.Module, start: int, end: int, resume: dict[str, Any] | None) -> None:
        if self.state.epoch >= end:
            return
        phase_config = getattr(self.config.phases, phase)
        lr = phase_config.lr or self.config.optimizer.lr
        weight_decay = self.config.optimizer.weight_decay
        groups = self.method.param_groups(lr, weight_decay) if phase == "prune" else plain_groups(model, lr, weight_decay)
        optimizer = make_optimizer(self.config, groups)
        if resume and start < resume["epoch"] < end:
            optimizer.load_state_dict(resume["optimizer"])
        trained = self._wrap(model)
        scaler = torch.amp.GradScaler(self.plan.device.type, enabled=self.plan.use_grad_scaler)
        for epoch in range(max(start, self.state.epoch), end):
            began = time.perf_counter()
            train_metrics = self._train_epoch(phase, model, trained, optimizer, scaler, epoch - start, end - start, epoch)
            entry = self._trail_entry(phase, model, epoch + 1, train_metrics, lr_now=optimizer.param_groups[0]["lr"])
            if phase == "prune":
                self.method.on_epoch_end(model, epoch + 1, entry)
            self.state.epoch = epoch + 1
            self.state.elapsed += time.perf_counter() - began
            entry["seconds"] = round(time.perf_counter() - began, 3)
            self.state.trail.append(entry)
            self._save_checkpoint(phase, model, optimizer, entry)
            self._report(entry)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.worker.world_size == 1:
            return model
        device_ids = [self.plan.device.index] if self.plan.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def _train_epoch(self, phase: str, model: nn.Module, trained: nn.Module, optimizer: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler, phase_epoch: int, phase_epochs: int, epoch: int) -> dict[str, float]:  # fmt: skip
        loader = self.loaders.train
        if hasattr(getattr(loader, "sampler", None), "set_epoch"):
            loader.sampler.set_epoch(epoch)
        steps = len(loader)
        model.train()
        loss_sum = correct = seen = 0.0
        for index, (inputs, labels) in enumerate(loader):
            factor = learning_rate_factor(self.config, phase_epoch + index / steps, phase_epochs)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            inputs, labels = inputs.to(self.plan.device, non_blocking=True), labels.to(self.plan.device, non_blocking=True)
            with torch.autocast(self.plan.device.type, dtype=self.plan.amp_dtype or torch.float32, enabled=self.plan.amp_dtype is not None):
                logits = trained(inputs)
                loss = F.cross_entropy(logits.float(), labels)
                penalty = self.method.penalty(model) if phase == "prune" else None
                objective = loss if penalty is None else loss + penalty
            self._check_finite(objective, epoch + 1)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(objective).backward()
            scaler.step(optimizer)
            scaler.update()
            if phase == "prune":
                self.method.after_step(model, phase_epoch * steps + index)
            elif phase == "finetune":
                self._reapply_zeros(model)
            loss_sum += float(loss.detach()) * len(labels)
            correct += float((logits.argmax(1) == labels).sum())
            seen += len(labels)
        loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], self.worker, self.plan.device)
        return {"train_loss": loss_sum / seen, "train_top1": correct / seen}

    def _check_finite(self, objective: torch.Tensor, epoch: int) -> None:
        """A diverged run stops at once; under DDP every worker learns of it in the same step."""
        value = objective.detach()
        finite = torch.isfinite(value).float()
        if self.worker.world_size > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not bool(finite):
            raise RunFailed(f"diverged in epoch {epoch}: training loss became {float(value):g}")

    def _reapply_zeros(self, model: nn.Module) -> None:
        with torch.no_grad():
            for (_, module), mask in zip(prunable_modules(model), self.keep_masks):
                module.weight.mul_(mask)

    def _trail_entry(self, phase: str, model: nn.Module, epoch: int, train_metrics: dict[str, float], lr_now: float) -> dict[str, Any]:
        """Evaluate the hard-pruned model as it stands after this epoch (LTP's Table 2 trail)."""
        snapshot = self.method.snapshot(model) if phase == "prune" else model
        val = evaluate(snapshot, self.loaders.val, self.plan, self.worker)
        _, nonzero = count_prunable(snapshot)
        density = nonzero / self.prunable_dense
        return {
            "epoch": epoch,
            "phase": phase,
            **{k: round(v, 6) for k, v in train_metrics.items()},
            "val_loss": round(val["loss"], 6),
            "val_top1": round(val["top1"], 6),
            "val_top5": round(val["top5"], 6),
            "density": round(density, 6),
            "compression": round(compression_rate(density), 4),
            "macs": count_macs(snapshot, self.input_shape),
            "lr": lr_now,
        }

    def _save_checkpoint(self, phase: str, model: nn.Module, optimizer: torch.optim.Optimizer, entry: dict[str, Any]) -> None:
        if not self.checkpoints:
            return
        state = {
            "epoch": self.state.epoch,
            "phase": phase,
            "trail": self.state.trail,
            "elapsed": self.state.elapsed,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "method": self.method.state_dict(),
            "prefinalize": self.state.prefinalize if phase == "finetune" else None,
        }
        self.checkpoints.save(state, entry)

    def _report(self, entry: dict[str, Any]) -> None:
        if not self.worker.is_chief:
            return
        total = self.config.phases.total_epochs()
        line = (
            f"epoch {entry['epoch']:>3}/{total} [{entry['phase']:<8}] loss {entry['train_loss']:.4f} "
            f"train {entry['train_top1']:.3f} val {entry['val_top1']:.3f} density {entry['density']:.4f} "
            f"({entry['compression']:.2f}x) MACs {entry['macs'] / 1e6:.2f}M {entry['seconds']:.1f}s"
        )
        if self.progress:
            self.progress.update(1)
            self.progress.write(line, file=sys.stderr)
        for callback in self.callbacks:
            callback(entry)


def environment(plan: DevicePlan, worker: Worker) -> dict[str, Any]:
    """Versions and hardware that produced a result. Never environment variables (secrets)."""
    import torchvision

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "device": plan.describe(),
        "world_size": worker.world_size,
        "torch_threads": torch.get_num_threads(),
    }
    if plan.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(plan.device)
    try:
        import ray

        info["ray"] = ray.__version__
    except ImportError:
        pass
    return info


def base_record(config: RunConfig) -> dict[str, Any]:
    """The fields of a result record that are known before training: identity and config."""
    method = methods.create(config.method.name, **config.method.hparams)
    return {
        "run_id": config.run_id(),
        "experiment": config.experiment,
        "config_hash": config.config_hash(),
        "method": config.method.name,
        "granularity": method.granularity,
        "model": config.model.name,
        "dataset": config.data.name,
        "seed": config.seed,
        "hparams": method.hparams.model_dump(mode="json"),
        "phases": {name: getattr(config.phases, name).epochs for name in PHASES},
        "epochs": config.phases.total_epochs(),
        "target_compression": config.target_compression,
        "config": config.model_dump(mode="json", exclude={"output_dir"}),
    }


def failed_record(config: RunConfig, error: str, trail: list[dict[str, Any]] | None = None, wall_seconds: float = 0.0,
                  env: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A record for a run that did not finish: every metric null, the reason kept."""
    record = base_record(config)
    metrics = ("top1", "top5", "prunable_params", "prunable_nonzero", "density", "compression_rate", "macs", "macs_dense",
               "flops", "flops_dense", "params", "params_dense", "epochs_to_sparsity", "input_size")  # fmt: skip
    record.update({key: None for key in metrics})
    record.update(status=STATUS_FAILED, error=error, trail=trail or [], wall_seconds=round(wall_seconds, 3), environment=env or {})
    return record


def train(config: RunConfig, worker: Worker = Worker(), checkpoints: CheckpointStore | None = None,
          callbacks: list[EpochCallback] | None = None) -> tuple[dict[str, Any], nn.Module | None]:  # fmt: skip
    """Run one config and return (result record, final model). Bad input raises UserError before
    any training; a run that breaks while training (divergence, broken data) returns a failed record."""
    return execute(Trainer(config, worker, checkpoints, callbacks or []))


def execute(trainer: Trainer) -> tuple[dict[str, Any], nn.Module | None]:
    """Train a prepared Trainer (its input already checked), evaluate once on the test split."""
    began = time.perf_counter()
    config, worker = trainer.config, trainer.worker
    env = environment(trainer.plan, worker)
    try:
        model = trainer.run()
        test = evaluate(model, trainer.loaders.test, trainer.plan, worker)
    except RunFailed as exc:
        if trainer.progress:
            trainer.progress.close()
        return failed_record(config, str(exc), trainer.state.trail, trainer.state.wall_seconds(began), env), None
    total, nonzero = count_prunable(model)
    macs = count_macs(model, trainer.input_shape)
    density = nonzero / trainer.prunable_dense
    record = base_record(config)
    record.update(
        status=STATUS_FINISHED,
        error=None,
        top1=test["top1"],
        top5=test["top5"],
        prunable_params=trainer.prunable_dense,
        prunable_nonzero=nonzero,
        density=density,
        compression_rate=compression_rate(density),
        macs=macs,
        macs_dense=trainer.macs_dense,
        flops=2 * macs,
        flops_dense=2 * trainer.macs_dense,
        params=sum(p.numel() for p in model.parameters()),
        params_dense=trainer.params_dense,
        input_size=list(trainer.input_shape),
        epochs_to_sparsity=epochs_to_sparsity(trainer.state.trail, config.target_compression),
        trail=trainer.state.trail,
        wall_seconds=trainer.state.wall_seconds(began),
        environment=env,
    )
    return record, model
