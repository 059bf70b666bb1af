"""Method overhead: the training-step time of each pruning method divided by the dense step time.

What: one prune-phase training step, the training loop's own `harness.step.Stepper` (forward,
cross-entropy, `method.penalty`, backward, optimizer step, `method.after_step`) on CIFAR ResNet-20
(10 classes, 32x32 inputs, batch 128), with the optimizer `harness.step.make_optimizer` builds
from the method's `param_groups` (the smoke configs' SGD: lr 0.05, momentum 0.9, weight decay
5e-4, for every method so that only the method differs). Each method is set up as the runner
does: `setup(target_compression, prune_epochs, steps_per_epoch, input_shape)`, `attach`,
`param_groups`. `torch.nn.utils.prune` (global L1 unstructured, masks applied by forward-pre-hooks)
runs beside our `global` method as a peer. The inputs are one fixed random batch (data loading is
not part of this benchmark).

How: every case holds its own model, method and optimizer; each round times one step of every
case in a shuffled order, and a case's ratio is its step time over the dense step time of the same
round; the table shows the median and inter-quartile range over rounds, of wall-clock time and of
process CPU time. All cases run with the same torch thread count, one by default: on a shared
2-core machine two intra-op threads wait on each other whenever one is descheduled (a dense step
took 11-17 s of wall clock with two threads against 1.1 s with one, at a load of 8), which drowns
any method's overhead; `--threads 2` measures two-thread ratios on a quiet machine. With one
thread the goal is judged on CPU time, which hardly moves with the neighbours' load (wall-clock
ratios spread over 0.6-1.35 between quartiles on the shared machine, CPU-time ratios over
1.01-1.07); with more threads CPU time also counts spin-waiting, so the wall clock decides.

Peak memory: the peak of live tensor bytes while a case is built and takes a few steps
(parameters, the method's state, optimizer state, activations, gradients, temporaries), from
torch.profiler's allocation events (profile_memory=True), counting only tensors allocated inside
that window. It is deterministic, unlike the RSS high-water mark, which here moved by +-30 MiB
between identical runs (allocator caching, the kernel reclaiming pages) and which a child process
inherits from its parent across fork and exec (getrusage ru_maxrss); it leaves out allocator slack
and Python objects. tracemalloc cannot see torch's allocations, and torch has no CPU peak counter.

Goals: every method at most 1.10x dense, DT with per-weight thresholds at most 1.25x.
`--profile CASE` prints where the time goes: torch.profiler's operators sorted by self CPU time,
and the step's parts (forward, penalty, backward, optimizer step, after_step) beside dense.
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch._C._profiler import _EventType
from torch.nn.utils import prune
from torch.profiler import ProfilerActivity, profile

from prunebench import methods
from bench.common import (
    goal_cell,
    interleave,
    judged,
    machine_caption,
    print_op_table,
    print_table,
    profile_ops,
    ratios,
    read_result,
    registered,
    show,
    spread,
    write_result,
)  # fmt: skip
from prunebench.core.device import Worker, plan_device
from prunebench.core.metrics import prunable_modules
from prunebench.harness import models
from prunebench.harness.config import RunConfig
from prunebench.harness.phases import PrunePhase
from prunebench.harness.step import Stepper, make_optimizer
from prunebench.harness.validation import load_run_config

NAME = "method_overhead"
REPO = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = REPO / "configs" / "smoke" / "dense.yaml"  # the optimizer every case uses
INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
TARGET_COMPRESSION = 4.0  # the smoke configs' target, for the methods that prune to one
PRUNE_EPOCHS, STEPS_PER_EPOCH = 10, 390  # a CIFAR-10 epoch at batch 128; sets global's ramp
STEP_PARTS = ("forward", "penalty", "backward", "optimizer.step", "after_step")
MEMORY_STEPS = 3


@dataclass(frozen=True)
class Case:
    method: str
    hparams: dict[str, Any] = field(default_factory=dict)
    goal: float | None = 1.10  # largest step-time ratio to dense that meets the goal
    torch_prune: bool = False  # torch.nn.utils.prune masks on top (the peer of `global`)


CASES: dict[str, Case] = {
    "dense": Case("dense", goal=None),
    "global": Case("global", {"schedule": "gradual"}),
    "torch-prune": Case("dense", goal=None, torch_prune=True),
    "ltp": Case("ltp"),
    "dt-weight": Case("dt", {"threshold_scope": "weight"}, goal=1.25),
    "dt-layer": Case("dt", {"threshold_scope": "layer"}),
    "psp-column": Case("psp", {"granularity": "column"}),
    "psp-channel": Case("psp", {"granularity": "channel"}),
    "ns": Case("ns"),
    "ot": Case("ot"),
}


class Trainee:
    """One case, ready to step: model with the method attached, and its optimizer."""

    def __init__(self, case: Case, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        torch.manual_seed(0)
        self.inputs, self.labels, self.steps = inputs, labels, 0
        self.method = methods.create(case.method, **case.hparams)
        self.method.setup(TARGET_COMPRESSION, PRUNE_EPOCHS, STEPS_PER_EPOCH, INPUT_SHAPE)
        self.model = self.method.attach(models.create("resnet20", NUM_CLASSES))
        if case.torch_prune:
            weights = [(module, "weight") for _, module in prunable_modules(self.model)]
            prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=1 - 1 / TARGET_COMPRESSION)
        self.model.train()
        self.stepper = prune_stepper(self.model, self.method, load_run_config(SMOKE_CONFIG), STEPS_PER_EPOCH)

    def step(self) -> None:
        self.stepper.step(self.inputs, self.labels, self.steps, epoch=1)
        self.steps += 1


def prune_stepper(model: nn.Module, method: methods.PruningMethod, config: RunConfig, steps_per_epoch: int) -> Stepper:
    """The training loop's own prune-phase step (harness.step), on this machine's CPU plan."""
    phase = PrunePhase(config, method, Worker(), start=0)
    optimizer = make_optimizer(config.optimizer, phase.param_groups(model, config.optimizer.weight_decay))
    plan = plan_device(config.amp)
    scaler = torch.amp.GradScaler(plan.device.type, enabled=plan.use_grad_scaler)
    return Stepper(phase, model, model, optimizer, scaler, plan, Worker(), steps_per_epoch)


def batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, *INPUT_SHAPE, generator=generator)
    return inputs, torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)


def peak_tensor_mib(case: Case, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Peak bytes of live tensors allocated while building `case` and taking MEMORY_STEPS steps,
    from the profiler's allocation events (frees of older tensors are ignored)."""
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        trainee = Trainee(case, inputs, labels)
        for _ in range(MEMORY_STEPS):
            trainee.step()
    # The profiler's raw event tree (what torch.profiler._memory_profiler reads): every allocation
    # and free with its address and size, in time order once sorted.
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation:
            events.append((event.start_time_ns, event.extra_fields.ptr, event.extra_fields.alloc_size))
    live = peak = 0
    sizes: dict[int, int] = {}
    for _, ptr, size in sorted(events):
        if size > 0:
            sizes[ptr] = size
            live += size
        elif ptr in sizes:
            live -= sizes.pop(ptr)
        peak = max(peak, live)
    return peak / 2**20


def measure(names: list[str], rounds: int, warmup: int, batch_size: int, threads: int, memory: bool) -> dict[str, Any]:
    names, skipped = registered({name: CASES[name].method for name in names})
    inputs, labels = batch(batch_size)
    trainees = {name: Trainee(CASES[name], inputs, labels) for name in names}
    timings = interleave({name: trainee.step for name, trainee in trainees.items()}, rounds, warmup)
    relative, relative_cpu = ratios(timings.wall, "dense"), ratios(timings.cpu, "dense")
    clock, times = judged(timings, threads)
    decisive = ratios(times, "dense")
    del trainees
    peaks = {name: peak_tensor_mib(CASES[name], inputs, labels) for name in names} if memory else {}
    rows = []
    for name in names:
        case = CASES[name]
        peak, dense_peak = peaks.get(name), peaks.get("dense")
        rows.append({
            "case": name,
            "method": case.method,
            "hparams": case.hparams,
            "torch_prune": case.torch_prune,
            "step_ms": spread([1000 * t for t in timings.wall[name]]),
            "ratio": relative[name],
            "cpu_ratio": relative_cpu[name],
            "goal": case.goal,
            "goal_met": None if case.goal is None else decisive[name].median <= case.goal,
            "peak_mib": peak,
            "peak_ratio": peak / dense_peak if peak is not None and dense_peak else None,
        })  # fmt: skip
    return {"model": "resnet20", "batch_size": batch_size, "rounds": rounds, "warmup": warmup, "threads": threads,
            "goal_judged_on": clock, "rows": rows, "skipped": skipped}  # fmt: skip


def render(record: dict[str, Any]) -> None:
    rows = []
    for row in record["rows"]:
        peak = None if row["peak_mib"] is None else f"{row['peak_mib']:.0f}"
        peak_ratio = None if row["peak_ratio"] is None else f"{row['peak_ratio']:.2f}x"
        goal = None if row["goal"] is None else f"<= {row['goal']:.2f}x"
        rows.append([row["case"], f"{row['step_ms']['median']:.0f}", show(row["ratio"]), show(row["cpu_ratio"]), goal,
                     goal_cell(row["goal_met"]), peak, peak_ratio])  # fmt: skip
    rows += [[name, None, f"skipped: {reason}", None, None, None, None, None] for name, reason in record["skipped"].items()]
    title = f"Method overhead: training step vs dense (ResNet-20, batch {record['batch_size']}, {record['threads']} threads, {record['rounds']} rounds)"
    columns = ["case", "step ms", "wall vs dense [IQR]", "CPU vs dense [IQR]", "goal", "met", "peak MiB", "peak vs dense"]
    caption = f"goal judged on {record['goal_judged_on']}; peak MiB: live tensors (torch.profiler)\n{machine_caption(record)}"
    print_table(title, columns, rows, caption)


def profile_case(name: str, batch_size: int, steps: int) -> None:
    """Where the time of one case's step goes, beside dense's."""
    inputs, labels = batch(batch_size)
    trainees = {case: Trainee(CASES[case], inputs, labels) for case in dict.fromkeys(["dense", name])}
    for trainee in trainees.values():
        trainee.step()  # warm-up
    stats = profile_ops({case: trainee.step for case, trainee in trainees.items()}, steps)
    print_op_table(stats, name, "dense", f"{name}: operators by self CPU time, ms per step (torch.profiler, {steps} steps)")
    parts = {case: {part: stats[case][part]["total_ms"] for part in STEP_PARTS if part in stats[case]} for case in trainees}
    rows = [[part, f"{parts['dense'].get(part, 0):.1f}", f"{parts[name].get(part, 0):.1f}",
             f"{parts[name].get(part, 0) - parts['dense'].get(part, 0):+.1f}"] for part in STEP_PARTS]  # fmt: skip
    print_table(f"{name}: ms per step by part, children included", ["part", "dense", name, "difference"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.method_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (one step of every case each)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for every case (see the docstring)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--profile", metavar="CASE", choices=list(CASES), help="print where the time of CASE goes, and stop")
    parser.add_argument("--profile-steps", type=int, default=6, help="profiled steps of CASE and of dense, alternating")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        if registered({args.profile: CASES[args.profile].method})[0]:
            profile_case(args.profile, args.batch_size, args.profile_steps)
        return
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; expected {', '.join(CASES)}")
    names = list(dict.fromkeys(["dense", *names]))  # dense is the reference of every ratio
    write_result(NAME, measure(names, args.rounds, args.warmup, args.batch_size, args.threads, not args.no_memory))
    render(read_result(NAME))


if __name__ == "__main__":
    main()
