"""Measured inference latency of a pruned model against its dense architecture, on one device.

Fewer MACs do not mean a faster model (kept widths that miss the kernels' blocks, zeros that
dense kernels still multiply), so a record carries a measured speedup beside its MACs. Timings
move with the machine's load, so the two models alternate (dense, pruned, pruned, dense, ...:
the first of each pair alternates too) and each speedup is the ratio of one pair measured back
to back; the median over pairs is the figure, the inter-quartile range says how far to trust it.
A time budget bounds the repeats (at least MIN_PAIRS pairs). On a GPU every sample is timed with
CUDA events around the calls and a synchronisation; on a CPU with the wall clock at the run's
thread count.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from prunebench.core.device import DevicePlan

MIN_PAIRS, MAX_PAIRS = 3, 100
WARMUP_CALLS = 2  # untimed forward passes of each model per batch size (allocator, lazy kernels)
MIN_SAMPLE_SECONDS = 1e-3  # tiny models: repeat the call within a sample until it lasts this long

Forward = Callable[[], Any]


def wall_clock(run: Forward, calls: int) -> float:
    """Seconds per call of `calls` back-to-back calls, by the wall clock (CPU work is synchronous)."""
    began = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - began) / calls


def cuda_event_clock(run: Forward, calls: int) -> float:
    """Seconds per call, timed on the GPU by CUDA events: kernels are queued asynchronously, so
    the host's clock would time the queueing; the events time the device's own work."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(calls):
        run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000 / calls


CLOCKS = {"cuda": ("cuda events", cuda_event_clock), "cpu": ("wall clock", wall_clock)}


def clock_for(plan: DevicePlan) -> tuple[str, Callable[[Forward, int], float]]:
    """(name, clock) for the plan's device: CUDA events on a GPU, the wall clock on a CPU."""
    return CLOCKS["cuda" if plan.device.type == "cuda" else "cpu"]


def forward(model: nn.Module, inputs: torch.Tensor, plan: DevicePlan) -> Forward:
    def run() -> Any:
        with torch.inference_mode(), plan.autocast():
            return model(inputs)

    return run


def time_pairs(reference: Forward, candidate: Forward, clock: Callable[[Forward, int], float], seconds: float) -> tuple[list[float], list[float]]:
    """Seconds per call of each, sample by sample in pairs whose first member alternates, until
    `seconds` have passed (at least MIN_PAIRS pairs, at most MAX_PAIRS)."""
    last = [[clock(run, 1) for _ in range(WARMUP_CALLS)][-1] for run in (reference, candidate)]  # the last warm call sizes a sample
    calls = max(1, math.ceil(MIN_SAMPLE_SECONDS / max(1e-9, min(last))))
    first: list[float] = []
    second: list[float] = []
    began = time.perf_counter()
    while len(first) < MAX_PAIRS and (len(first) < MIN_PAIRS or time.perf_counter() - began < seconds):
        if len(first) % 2:
            second.append(clock(candidate, calls))
            first.append(clock(reference, calls))
        else:
            first.append(clock(reference, calls))
            second.append(clock(candidate, calls))
    return first, second


def summary(values: Sequence[float], scale: float = 1.0) -> tuple[float, list[float]]:
    """(median, [first quartile, third quartile]) of `values` times `scale`, to 5 significant digits."""
    values = sorted(v * scale for v in values)
    q1, median, q3 = (values[0],) * 3 if len(values) == 1 else statistics.quantiles(values, n=4, method="inclusive")
    return significant(median), [significant(q1), significant(q3)]


def significant(value: float) -> float:
    return float(f"{value:.5g}")


def measure_latency(dense: nn.Module, pruned: nn.Module, input_shape: Sequence[int], plan: DevicePlan,
                    batch_sizes: Sequence[int], seconds: float) -> dict[str, Any]:  # fmt: skip
    """The record's `latency`: per batch size, ms per forward pass of the pruned (`ms`) and the
    dense model (`dense_ms`), the paired speedup dense / pruned, their inter-quartile ranges and
    the pairs timed. Both models are on the plan's device; `seconds` is shared by the batch sizes."""
    label, clock = clock_for(plan)
    modes = [dense.training, pruned.training]
    dense.eval()
    pruned.eval()
    generator = torch.Generator().manual_seed(0)
    figures: dict[str, dict[int, Any]] = {key: {} for key in ("ms", "dense_ms", "speedup", "ms_iqr", "dense_ms_iqr", "speedup_iqr", "pairs")}
    for batch in batch_sizes:
        inputs = torch.randn(batch, *input_shape, generator=generator).to(plan.device)
        dense_s, pruned_s = time_pairs(forward(dense, inputs, plan), forward(pruned, inputs, plan), clock, seconds / len(batch_sizes))
        speedups = [d / p for d, p in zip(dense_s, pruned_s)]
        for key, values, scale in (("ms", pruned_s, 1000), ("dense_ms", dense_s, 1000), ("speedup", speedups, 1)):
            figures[key][batch], figures[f"{key}_iqr"][batch] = summary(values, scale)
        figures["pairs"][batch] = len(speedups)
    dense.train(modes[0])
    pruned.train(modes[1])
    threads = torch.get_num_threads() if plan.device.type == "cpu" else None
    return {"device": plan.hardware(), "threads": threads, "clock": label, "batch_sizes": list(batch_sizes), **figures}
