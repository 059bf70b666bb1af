"""The training loop: one run, its phases, the per-epoch trail, one final test evaluation.

Read top to bottom: `Trainer.__init__` seeds and builds data, model and method; `run` takes
each phase in turn (dense -> prune -> finetune), lets it make its model (`enter`: the method
attaches before pruning and finalizes before fine-tuning) and trains its epochs with the same
step; after every epoch the trail gets the hard-pruned model's validation numbers and a
checkpoint is saved. A restarted run restores all of it in `_resume_into` from the checkpoint
the run's set-up checked (harness.checkpoints owns its format). The same loop runs in-process
and in every Ray Train worker.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from prunebench import methods
from prunebench.core.device import Worker, plan_device
from prunebench.core.errors import UserError
from prunebench.core.metrics import compression_rate, count_macs, count_prunable, layer_facts
from prunebench.core.record import finite_or_none
from prunebench.harness import datasets, from_scratch, models
from prunebench.harness.checkpoints import Checkpoint, Checkpoints, RunShape, capture_rng, restore_rng
from prunebench.harness.config import RunConfig
from prunebench.harness.phases import Phase, run_phases
from prunebench.harness.results import RunFacts
from prunebench.harness.progress import StepProgress, epoch_label, epoch_line
from prunebench.harness.step import Stepper, all_reduce_sum, evaluate, make_optimizer

EpochCallback = Callable[[dict[str, Any]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class RunState:
    """How far the run is: epochs done, the trail, training seconds across restarts."""

    epoch: int = 0
    trail: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0  # training seconds, across restarts
    elapsed_before_restart: float = 0.0  # of that, what earlier processes spent

    def wall_seconds(self, began: float) -> float:
        """This process's time since `began` plus what earlier processes of the run spent."""
        return round(self.elapsed_before_restart + time.perf_counter() - began, 3)


class Trainer:
    """One run on one worker. Bad input raises UserError here, before any training."""

    def __init__(self, config: RunConfig, worker: Worker, checkpoints: Checkpoints | None,
                 callbacks: list[EpochCallback], start_from: dict[str, torch.Tensor] | None = None) -> None:  # fmt: skip
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
        self.model = self.dense_architecture()
        if start_from is not None:
            models.load_state(self.model, config.model.name, start_from, f"model.dense_stage: {config.model.dense_stage.run_id}")
        elif config.model.pretrained:
            models.load_pretrained(self.model, config.model.name, config.model.pretrained)
        self.method = methods.create(config.method.name, **config.method.hparams)
        self.method.read_runs(from_scratch.source_runs(config))  # the runs its hyper-parameters name (match)
        self.method.check_model(self.model)
        self.prunable_dense, _ = count_prunable(self.model)
        self.params_dense = sum(p.numel() for p in self.model.parameters())
        self.layers_dense = layer_facts(self.model, self.input_shape)
        if config.model.from_architecture is not None:  # compared with the dense architecture above, trained at the source's widths
            self.model = from_scratch.source_architecture(config, self.model, self.input_shape)
        self.model.to(self.plan.device)
        if len(self.loaders.train) == 0:
            raise UserError(f"data.batch_size: {config.data.batch_size} is larger than the training split")
        self.steps_per_epoch = min(len(self.loaders.train), config.max_steps_per_epoch or len(self.loaders.train))
        self.method.setup(config.target_compression, config.phases.prune.epochs, self.steps_per_epoch, self.input_shape)
        self.phases = run_phases(config, self.method, worker)
        self.state = RunState()
        self.progress: StepProgress | None = None  # the current epoch's steps, on rank 0

    def dense_architecture(self) -> nn.Module:
        """A fresh model of the run's architecture before pruning: every layer at its dense shape."""
        config = self.config
        return models.create(config.model.name, self.splits.num_classes, self.splits.in_channels, self.splits.image_size, config.model.init)

    def _loaders(self) -> datasets.Loaders:
        if self.config.data.loader == "dali":
            from prunebench.harness.dali import make_dali_loaders  # DALI loads only for runs that use it

            return make_dali_loaders(self.config.data, self.plan, self.config.seed, self.worker)
        return datasets.make_loaders(self.splits, self.config.data, self.config.seed, self.worker.rank, self.worker.world_size)

    @property
    def loader_generator(self) -> torch.Generator | None:
        return getattr(self.loaders.train, "generator", None)

    # --- phases --------------------------------------------------------------------------

    def run(self) -> nn.Module:
        """Train every phase; returns the final (finalized, fine-tuned) model."""
        saved = self.checkpoints.load(self.resume_shape) if self.checkpoints else None
        if saved is None and self.config.model.dense_stage is not None:
            self.state.epoch = self.config.phases.dense.epochs  # the stage's model is this dense phase's outcome
        before_checkpoint = saved is not None  # phases before the checkpoint's are entered, not trained
        for phase in self.phases:
            entry_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            if saved is not None and phase.name == saved.phase:
                self._resume_into(phase, saved)
                before_checkpoint = False
                continue
            self.model = phase.enter(self.model)
            if not before_checkpoint:
                self._train_phase(phase, entry_state, None)
        return self.model

    def facts(self) -> RunFacts:
        """What the record is built from once the run has ended (harness.results)."""
        return RunFacts(self.config, self.plan, self.input_shape, self.prunable_dense, self.params_dense, self.layers_dense,
                        self.state.trail, self.phases[-1].histograms, self.dense_architecture)  # fmt: skip

    @property
    def resume_shape(self) -> RunShape:
        """What a checkpoint of this run must fit: its phases, its epochs, its dense model."""
        structured = self.method.granularity == "structured"
        return RunShape.of_model(tuple(p.name for p in self.phases), self.config.phases.total_epochs(), self.model, structured)

    def _resume_into(self, phase: Phase, saved: Checkpoint) -> None:
        """Rebuild the phase's model from the state it was entered with (a structured finalize
        replays), restore the model, the method, the optimizer and every random generator, and
        train the epochs that are left."""
        self.state = RunState(saved.epoch, saved.trail, saved.elapsed, saved.elapsed)
        self.model.load_state_dict(saved.entry)
        self.method.load_state_dict(saved.method)  # what enter reads (finalize's thresholds)
        self.model = phase.enter(self.model)
        self.model.load_state_dict(saved.model)
        self.method.load_state_dict(saved.method)  # what enter re-initialised (attach)
        restore_rng(saved.rng, self.loader_generator)
        self._train_phase(phase, saved.entry, saved)

    def _train_phase(self, phase: Phase, entry_state: dict[str, torch.Tensor], saved: Checkpoint | None) -> None:
        if self.state.epoch >= phase.end:
            return
        model = self.model
        optimizer = make_optimizer(self.config.optimizer, phase.param_groups(model, self.config.optimizer.weight_decay))
        scaler = torch.amp.GradScaler(self.plan.device.type, enabled=self.plan.use_grad_scaler)
        if saved is not None:
            optimizer.load_state_dict(saved.optimizer)
            scaler.load_state_dict(saved.scaler)
        stepper = Stepper(phase, model, self._wrap(model), optimizer, scaler, self.plan, self.worker, self.steps_per_epoch)
        for epoch in range(max(phase.start, self.state.epoch), phase.end):
            began = time.perf_counter()
            train_metrics = self._train_epoch(stepper, epoch)
            entry = self._trail_entry(phase, model, epoch + 1, train_metrics, lr_now=optimizer.param_groups[0]["lr"])
            phase.on_epoch_end(model, epoch + 1, entry)
            self.state.epoch = epoch + 1
            self.state.elapsed += time.perf_counter() - began
            entry["seconds"] = round(time.perf_counter() - began, 3)
            self.state.trail.append(entry)
            self._save_checkpoint(phase, entry_state, stepper)
            self._report(entry)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.worker.world_size == 1:
            return model
        device_ids = [self.plan.device.index] if self.plan.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def _train_epoch(self, stepper: Stepper, epoch: int) -> dict[str, float]:
        phase, loader = stepper.phase, self.loaders.train
        if hasattr(getattr(loader, "sampler", None), "set_epoch"):
            loader.sampler.set_epoch(epoch)
        steps = self.steps_per_epoch
        stepper.model.train()
        loss_sum = correct = seen = 0.0
        self.progress = self._step_progress(phase, epoch, steps)
        for index, (inputs, labels) in enumerate(loader):
            if index == steps:  # max_steps_per_epoch
                break
            inputs, labels = inputs.to(self.plan.device, non_blocking=True), labels.to(self.plan.device, non_blocking=True)
            loss, logits = stepper.step(inputs, labels, (epoch - phase.start) * steps + index, epoch + 1)
            loss_now = float(loss)
            loss_sum += loss_now * len(labels)
            correct += float((logits.argmax(1) == labels).sum())
            seen += len(labels)
            if self.progress:
                self.progress.step(len(labels) * self.worker.world_size, loss_now, stepper.optimizer.param_groups[0]["lr"])
        if self.progress:
            self.progress.close()
        loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], self.worker, self.plan.device)
        return {"train_loss": loss_sum / seen, "train_top1": correct / seen}

    def _step_progress(self, phase: Phase, epoch: int, steps: int) -> StepProgress | None:
        if not self.worker.is_chief:
            return None
        return StepProgress(epoch_label(epoch + 1, self.config.phases.total_epochs(), phase.name), steps)

    def _trail_entry(self, phase: Phase, model: nn.Module, epoch: int, train_metrics: dict[str, float], lr_now: float) -> dict[str, Any]:
        """Evaluate the hard-pruned model as it stands after this epoch (LTP's Table 2 trail)."""
        snapshot = phase.snapshot(model)
        val = evaluate(snapshot, self.loaders.val, self.plan, self.worker)
        _, nonzero = count_prunable(snapshot)
        density = nonzero / self.prunable_dense
        return {
            "epoch": epoch,
            "phase": phase.name,
            **{k: finite_or_none(round(v, 6)) for k, v in train_metrics.items()},
            "val_loss": finite_or_none(round(val["loss"], 6)),
            "val_top1": round(val["top1"], 6),
            "val_top5": round(val["top5"], 6),
            "density": round(density, 6),
            "compression": finite_or_none(round(compression_rate(density), 4)),
            "macs": count_macs(snapshot, self.input_shape),
            "lr": lr_now,
        }

    def _save_checkpoint(self, phase: Phase, entry_state: dict[str, torch.Tensor], stepper: Stepper) -> None:
        if not self.checkpoints:
            return
        self.checkpoints.save(Checkpoint(
            epoch=self.state.epoch,
            phase=phase.name,
            trail=self.state.trail,
            elapsed=self.state.elapsed,
            entry=entry_state,
            model=stepper.model.state_dict(),
            optimizer=stepper.optimizer.state_dict(),
            scaler=stepper.scaler.state_dict(),
            method=self.method.state_dict(),
            rng=capture_rng(self.loader_generator),
        ))  # fmt: skip

    def _report(self, entry: dict[str, Any]) -> None:
        if not self.worker.is_chief:
            return
        print(epoch_line(entry, self.config.phases.total_epochs()), file=sys.stderr, flush=True)
        for callback in self.callbacks:
            callback(entry)
