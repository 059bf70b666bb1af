"""The result record of a run, built from what the trainer computed (core.record is its schema)."""

from __future__ import annotations

import platform
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from prunebench import methods
from prunebench.core.device import DevicePlan, Worker
from prunebench.core.errors import error_line
from prunebench.core.latency import measure_latency
from prunebench.core.metrics import compare_layers, compression_rate, count_prunable, epochs_to_sparsity, layer_facts
from prunebench.core.phases import PHASES
from prunebench.core.record import SCHEMA_VERSION, STATUS_FAILED, STATUS_FINISHED, Histogram, ResultRecord, finite_or_none
from prunebench.harness.config import RunConfig


@dataclass(frozen=True)
class RunFacts:
    """What the record of a finished run is built from, handed over by the trainer: the run's
    config and device, its dense model's counts (what density, MACs and widths are measured
    against), the trail and the method's histograms."""

    config: RunConfig
    plan: DevicePlan
    input_shape: tuple[int, ...]
    prunable_dense: int
    params_dense: int
    layers_dense: dict[str, dict[str, Any]]
    trail: list[dict[str, Any]]
    histograms: list[Histogram]
    dense_architecture: Callable[[], nn.Module]  # a fresh dense model of the run's architecture (for latency)

    @property
    def macs_dense(self) -> int:
        return sum(layer["macs"] for layer in self.layers_dense.values())


def environment(plan: DevicePlan, worker: Worker) -> dict[str, Any]:
    """Versions and hardware that produced a result. Never environment variables (secrets)."""
    import ray  # loaded when a run ends, not when the command starts
    import torchvision

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "ray": ray.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "device": plan.describe(),
        "world_size": worker.world_size,
        "torch_threads": torch.get_num_threads(),
    }
    if plan.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(plan.device)
    if ray.is_initialized():
        info["node_id"] = ray.get_runtime_context().get_node_id()
    return info


def identity_fields(config: RunConfig) -> dict[str, Any]:
    """The fields of a record that are known before training: identity and config (whose
    hyper-parameters are the ones the method validated: harness.validation)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": config.run_id(),
        "experiment": config.experiment,
        "config_hash": config.config_hash(),
        "configuration": config.configuration_hash(),
        "method": config.method.name,
        "granularity": "structured" if config.model.from_architecture else methods.get(config.method.name).granularity,  # a structured run's architecture
        "model": config.model.name,
        "dataset": config.data.name,
        "seed": config.seed,
        "hparams": config.method.hparams,
        "phases": {name: getattr(config.phases, name).epochs for name in PHASES},
        "epochs": config.phases.total_epochs(),
        "global_batch": config.data.batch_size,
        "target_compression": finite_or_none(config.target_compression),
        "config": config.model_dump(mode="json", exclude={"output_dir"}),
    }


def failed_record(config: RunConfig, error: str, trail: list[dict[str, Any]] | None = None, wall_seconds: float = 0.0,
                  env: dict[str, Any] | None = None) -> ResultRecord:  # fmt: skip
    """A run that did not finish: every metric missing, the reason and the trail kept."""
    return ResultRecord(**identity_fields(config), status=STATUS_FAILED, error=error, trail=trail or [],
                        wall_seconds=round(wall_seconds, 3), environment=env or {})  # fmt: skip


def run_latency(facts: RunFacts, model: nn.Module) -> dict[str, Any] | None:
    """The final model against a fresh dense model of the run's architecture, at the run's input
    size on its device (only shapes decide a dense kernel's time, so the dense model's weights
    need not be the run's). None when `latency.enabled` is off, or when the device runs out of
    memory (or anything else breaks) at a batch size, said on stderr: the measurement can only
    remove latency from a record, never the record."""
    settings = facts.config.latency
    if not settings.enabled:
        return None
    try:
        dense = facts.dense_architecture().to(facts.plan.device)
        return measure_latency(dense, model, facts.input_shape, facts.plan, settings.batch_sizes, settings.seconds)
    except Exception as exc:  # a CPU allocation failure is a RuntimeError, not torch.OutOfMemoryError
        print(f"prunebench: warning: {facts.config.run_id()}: cannot measure latency at batch sizes "
              f"{settings.batch_sizes} ({error_line(exc)}); recorded without latency", file=sys.stderr)  # fmt: skip
        return None


def finished_record(facts: RunFacts, model: nn.Module, test: dict[str, float], wall_seconds: float, env: dict[str, Any]) -> ResultRecord:
    _, nonzero = count_prunable(model)
    layers = compare_layers(facts.layers_dense, layer_facts(model, facts.input_shape))
    macs = sum(layer["macs"] for layer in layers)
    density = nonzero / facts.prunable_dense
    params_nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return ResultRecord(
        **identity_fields(facts.config),
        status=STATUS_FINISHED,
        error=None,
        top1=test["top1"],
        top5=test["top5"],
        prunable_params=facts.prunable_dense,
        prunable_nonzero=nonzero,
        density=density,
        compression_rate=finite_or_none(compression_rate(density)),
        macs=macs,
        macs_dense=facts.macs_dense,
        flops=2 * macs,
        flops_dense=2 * facts.macs_dense,
        params=sum(p.numel() for p in model.parameters()),
        params_dense=facts.params_dense,
        params_nonzero=params_nonzero,
        compression_all=finite_or_none(facts.params_dense / params_nonzero) if params_nonzero else None,
        input_size=list(facts.input_shape),
        epochs_to_sparsity=epochs_to_sparsity(facts.trail, facts.config.target_compression),
        trail=facts.trail,
        layers=layers,
        latency=run_latency(facts, model),
        histograms=facts.histograms,
        wall_seconds=wall_seconds,
        environment=env,
    )
