"""The result record: one typed, versioned schema for the writer, the W&B mirror, the store
reader, seed aggregation and every export. It is the only list of record keys.

Version 2 added `schema_version`, `configuration` (the seedless identity hash) and `layers`;
version 3 added `latency` (measured speedup against the dense architecture). Records written
before still validate, with those fields empty.
`global_batch`, `params_nonzero` and `compression_all` (compression over all parameters, as PSP and
ShrinkBench count it; `compression_rate` counts prunable weights) are empty in records written before them.
`histograms` (a method's distributions, e.g. PSP's |alpha|) is optional and empty in records written before it.
Fractions are in [0, 1], counts are non-negative, compression is at least 1, and no number
is infinite or NaN: a metric that cannot be finite is recorded as missing.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from prunebench.core.strict import Strict

SCHEMA_VERSION = 3
STATUS_FINISHED, STATUS_FAILED = "finished", "failed"

# Strict: a JSON `true` is not the number 1.
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True)]
Count = Annotated[int, Field(ge=0, strict=True)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Compression = Annotated[float, Field(ge=1, allow_inf_nan=False, strict=True)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
BatchSize = Annotated[int, Field(gt=0)]  # not strict: JSON object keys are strings ("64")


def metric(**kwargs: Any) -> Any:
    """A field that is a number per run: averaged over seeds, shown and exported by the board."""
    kwargs.setdefault("default", None)
    return Field(json_schema_extra={"metric": True}, **kwargs)


def finite_or_none(value: float | None) -> float | None:
    """The value, or None where it is infinite or NaN (the record holds only finite numbers)."""
    return None if value is None or not math.isfinite(value) else value


class TrailEntry(Strict):
    """One epoch: the hard-pruned model as it stood after it (LTP's Table 2 trail)."""

    epoch: Count
    phase: str
    train_loss: Finite | None = None
    train_top1: Fraction | None = None
    val_loss: Finite | None = None
    val_top1: Fraction | None = None
    val_top5: Fraction | None = None
    density: Fraction | None = None
    compression: Compression | None = None
    macs: Count | None = None
    lr: Finite | None = None
    seconds: Seconds | None = None


class LayerFacts(Strict):
    """One prunable layer of the dense model and what is left of it (OT's Table III widths)."""

    name: str
    kind: Literal["conv", "linear"]
    out_channels_dense: Count
    out_channels: Count
    weights_dense: Count
    weights_nonzero: Count
    macs_dense: Count
    macs: Count


class Latency(Strict):
    """Measured inference speed of the final model against the dense architecture of the same
    run, on the worker's device (core.latency): per batch size, ms per forward pass of the
    batch, the paired speedup dense / pruned (median), and their inter-quartile ranges."""

    device: str = Field(min_length=1, description="'cpu MODEL' or 'cuda MODEL': rows measured on different devices are never ranked on speed together")
    threads: Count | None = Field(description="torch CPU threads of the measurement; None on a GPU")
    clock: str = Field(min_length=1)
    batch_sizes: list[BatchSize] = Field(min_length=1)
    ms: dict[BatchSize, Positive]
    dense_ms: dict[BatchSize, Positive]
    speedup: dict[BatchSize, Positive]
    ms_iqr: dict[BatchSize, tuple[Positive, Positive]]
    dense_ms_iqr: dict[BatchSize, tuple[Positive, Positive]]
    speedup_iqr: dict[BatchSize, tuple[Positive, Positive]]
    pairs: dict[BatchSize, Count]

    @model_validator(mode="after")
    def _every_batch_size(self) -> "Latency":
        for name in ("ms", "dense_ms", "speedup", "ms_iqr", "dense_ms_iqr", "speedup_iqr", "pairs"):
            if set(getattr(self, name)) != set(self.batch_sizes):
                raise ValueError(f"{name} has a figure for every batch size in batch_sizes and no other")
        return self

    @property
    def speed_device(self) -> str:
        """What speed figures are comparable across: the device and, on a CPU, its thread count."""
        return self.device if self.threads is None else f"{self.device}, {self.threads} thread{'s' * (self.threads != 1)}"

class Histogram(Strict):
    """A distribution a method reports of its model at the end of pruning (PSP's bimodal |alpha|):
    counts[i] values fall in [edges[i], edges[i + 1]), the last bin closed; `threshold` is where the
    method cuts, if it has one."""

    name: str = Field(min_length=1)
    edges: list[Finite] = Field(min_length=2)
    counts: list[Count] = Field(min_length=1)
    threshold: Finite | None = None

    @model_validator(mode="after")
    def _bins_agree(self) -> "Histogram":
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError("a histogram has one more edge than counts")
        if any(b < a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError("histogram edges ascend")
        return self


class ResultRecord(Strict):
    """What one run computed and how it ended; `result.json` holds exactly these keys."""

    schema_version: int = 1  # records without the field are version 1
    run_id: str = Field(min_length=1)
    experiment: str = Field(min_length=1)
    config_hash: str = Field(min_length=1)
    configuration: str | None = Field(default=None, description="seedless identity hash: the seeds of one configuration share it")
    method: str = Field(min_length=1)
    granularity: Literal["unstructured", "structured", "none"] | None = None
    model: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    seed: Count
    hparams: dict[str, Any]
    phases: dict[str, Count] | None = None
    epochs: Count = metric(default=...)
    global_batch: Count | None = Field(default=None, description="examples per optimizer step over all DDP workers (data.batch_size)")
    target_compression: Compression | None
    config: dict[str, Any] | None = None
    status: Literal["finished", "failed"]
    error: str | None
    top1: Fraction | None = metric()
    top5: Fraction | None = metric()
    prunable_params: Count | None = metric()
    prunable_nonzero: Count | None = metric()
    density: Fraction | None = metric()
    compression_rate: Compression | None = metric()
    macs: Count | None = metric()
    macs_dense: Count | None = metric()
    flops: Count | None = metric()
    flops_dense: Count | None = metric()
    params: Count | None = metric()
    params_dense: Count | None = metric()
    params_nonzero: Count | None = metric(description="nonzero parameters of every kind (weights, biases, BN)")
    compression_all: Compression | None = metric(description="params_dense / params_nonzero: compression over all parameters (PSP, ShrinkBench)")
    input_size: list[Count] | None = None
    epochs_to_sparsity: Count | None = metric()
    trail: list[TrailEntry]
    layers: list[LayerFacts] = Field(default_factory=list)
    latency: Latency | None = None
    histograms: list[Histogram] = Field(default_factory=list)
    wall_seconds: Seconds = metric(default=...)
    environment: dict[str, Any]

    @model_validator(mode="after")
    def _status_agrees(self) -> "ResultRecord":
        if self.status == STATUS_FINISHED and (self.top1 is None or self.density is None):
            raise ValueError("a finished run has top1 and density")
        if self.status == STATUS_FAILED and not self.error:
            raise ValueError("a failed run says why (error)")
        return self

    @property
    def finished(self) -> bool:
        return self.status == STATUS_FINISHED


# Per-run numbers, in schema order: what seeds are averaged over and the board exports.
METRICS = tuple(name for name, info in ResultRecord.model_fields.items() if (info.json_schema_extra or {}).get("metric"))
REQUIRED_KEYS = tuple(name for name, info in ResultRecord.model_fields.items() if info.is_required())
