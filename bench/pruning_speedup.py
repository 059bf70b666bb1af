"""What pruning buys: measured CPU inference speedup against the theoretical MACs reduction.

What: pairs of (dense, pruned) models at 32x32 inputs, 10 classes:
- the structured methods' pruned ResNet-20 (PSP with channel granularity, NS, OT): the method is
  set up and attached as the runner does, takes `--steps` sparsity-training steps on the digits
  data with its smoke config (configs/smoke/METHOD.yaml: hyper-parameters, optimizer), and
  `finalize` removes what it pruned (physically smaller layers, removed branches). The pruned
  structure is what decides latency, so brief training is enough; it is not the smoke result's
  accuracy or compression;
- ResNet-56 and VGG-14 (`resnet56`, `vgg14_bn`) pruned to half their MACs with Torch-Pruning's
  channel removal: a uniform per-layer ratio, L1 weight magnitude, raised in small steps until
  MACs <= 1/2 of dense (the classifier keeps its outputs);
- unstructured: ResNet-20 pruned 10x by `global` magnitude pruning (one-shot), kept in the dense
  format as the harness keeps it: masks alone, zeros still multiplied.
Theoretical speedup = dense MACs / pruned MACs (`core.metrics.count_macs`, which counts only
nonzero weights and live channels). Measured speedup = dense latency / pruned latency in eval
mode under `torch.inference_mode`, at batch 1 and batch 64.

How: dense and pruned forward passes alternate (interleaved rounds after a warm-up round); the
speedup is paired round by round; median and inter-quartile range. One torch thread by default
(see bench/method_overhead.py: two threads on a shared 2-core machine measure the neighbours);
with one thread the CPU-time ratio decides the goal, else the wall clock. Goal: measured speedup at
least 0.7x the theoretical one at batch 64, for structured pruning; not judged where the MACs fell
by less than 1.2x (too little pruned for the ratio to mean anything).

Width rounding: the structured methods' ResNet-20 and ResNet-56 (each trained once, `--steps`
steps as above) finalized with `round_to` off and at each N of ROUND_TO; at batch 64 the dense
model and every N are timed in the same interleaved rounds, so each N's speedup is paired with
the same dense passes. Goal: for each model and method, the best N's measured speedup at least
0.75x its theoretical one (not judged below 1.2x fewer MACs, as above).

Sparse export: for the 10x global model, the bytes of each prunable layer's weight as a CSR
matrix (rows = output channels; values + column indices + row pointers, from
`Tensor.to_sparse_csr`, int64 indices, and the same with int32 indices) against its dense bytes.
"""

from __future__ import annotations

import argparse
import functools
import warnings
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any, Callable

import torch
import torch_pruning as tp
from torch import nn

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
from bench.method_overhead import prune_stepper
from prunebench.core.metrics import count_macs, prunable_modules
from prunebench.harness import models
from prunebench.harness.datasets import build_splits, make_loaders
from prunebench.harness.validation import load_run_config

NAME = "pruning_speedup"
SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke"
INPUT_SHAPE, NUM_CLASSES = (3, 32, 32), 10
GOAL = 0.7  # measured / theoretical speedup at batch 64
MIN_THEORETICAL = 1.2  # below this MACs reduction a pair pruned too little for the goal to say anything
BATCHES = {1: 10, 64: 1}  # batch size -> forward passes per timed call
STRUCTURED = {"psp-channel": ("psp", ["method.hparams.granularity=channel"]), "ns": ("ns", []), "ot": ("ot", [])}
TP_MODELS = ("resnet56", "vgg14_bn")
SPARSE_COMPRESSION = 10.0
ROUND_TO = (None, 4, 8, 16, 32)  # None: the method's own widths
ROUNDED_MODELS = ("resnet20", "resnet56")
ROUNDING_GOAL = 0.75  # best N's measured / theoretical speedup at batch 64 (issue: structured pruning that pays off)


@dataclass(frozen=True)
class Pair:
    """A dense model and how to prune it; `method` must be registered for the pair to run."""

    model: str
    how: str
    prune: Callable[[], nn.Module]
    goal: float | None = GOAL
    method: str | None = None


def fresh(name: str) -> nn.Module:
    torch.manual_seed(0)
    return models.create(name, NUM_CLASSES)


@functools.cache
def trained(label: str, model_name: str, steps: int) -> tuple[methods.PruningMethod, nn.Module]:
    """The method of STRUCTURED[label] attached to `model_name` after `steps` prune-phase steps of
    its smoke config; cached, so every rounding of it is finalized from the same training."""
    method_name, overrides = STRUCTURED[label]
    config = load_run_config(SMOKE / f"{method_name}.yaml", [*overrides, f"model.name={model_name}"])
    method = methods.create(config.method.name, **config.method.hparams)
    method.setup(config.target_compression, 1, steps, INPUT_SHAPE)
    model = method.attach(fresh(model_name))
    stepper = prune_stepper(model, method, config, steps)
    loader = make_loaders(build_splits(config.data), config.data, config.seed).train
    model.train()
    for step, (inputs, labels) in zip(range(steps), cycle(loader)):
        stepper.step(inputs, labels, step, epoch=1)
    return method, model


def method_pruned(label: str, model_name: str, steps: int, round_to: int | None = None) -> nn.Module:
    """The trained model finalized with `round_to`, on a copy (`snapshot`): the training stays for the next N."""
    method, model = trained(label, model_name, steps)
    method.hparams = method.hparams.model_copy(update={"round_to": round_to})
    return method.snapshot(model)


def halve_macs(model: nn.Module, steps: int = 40, max_ratio: float = 0.8) -> nn.Module:
    """Remove channels (uniform ratio per layer, L1 magnitude) in steps of max_ratio / steps until
    the MACs are at most half of the dense model's."""
    target = count_macs(model, INPUT_SHAPE) / 2
    classifier = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
    pruner = tp.pruner.MetaPruner(model, torch.zeros(1, *INPUT_SHAPE), importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=max_ratio, iterative_steps=steps, ignored_layers=[classifier])  # fmt: skip
    for _ in range(steps):
        pruner.step()
        if count_macs(model, INPUT_SHAPE) <= target:
            break
    return model


def global_pruned(compression: float) -> nn.Module:
    """ResNet-20 with `global` magnitude masks at `compression`, zeros kept in the dense format."""
    method = methods.create("global", schedule="one_shot")
    method.setup(compression, 1, 1, INPUT_SHAPE)
    return method.finalize(method.attach(fresh("resnet20")))


def forward_passes(model: nn.Module, inputs: torch.Tensor, count: int) -> Callable[[], None]:
    def run() -> None:
        with torch.inference_mode():
            for _ in range(count):
                model(inputs)

    return run


def timed(cases: dict[str, nn.Module], batch: int, rounds: int, threads: int) -> dict[str, Any]:
    """ms per forward pass of every model at `batch`, interleaved, and each one's paired speedup
    over the case named 'dense'."""
    count = BATCHES[batch]
    inputs = torch.randn(batch, *INPUT_SHAPE)
    timings = interleave({name: forward_passes(model.eval(), inputs, count) for name, model in cases.items()}, rounds)
    clock, times = judged(timings, threads)
    speedups = {name: ratios(times, name)["dense"] for name in times}  # dense / case, round by round
    return {"ms": {name: 1000 * spread(values).median / count for name, values in times.items()}, "speedup": speedups, "clock": clock}


def latency(dense: nn.Module, pruned: nn.Module, rounds: int, threads: int) -> dict[str, Any]:
    """Per batch size: ms per forward pass of each model and the paired speedup dense / pruned."""
    results = {}
    for batch in BATCHES:
        measured = timed({"dense": dense, "pruned": pruned}, batch, rounds, threads)
        ms = measured["ms"]
        results[batch] = {"dense_ms": ms["dense"], "pruned_ms": ms["pruned"], "speedup": measured["speedup"]["pruned"], "clock": measured["clock"]}
    return results


def compare(label: str, pair: Pair, dense: nn.Module, pruned: nn.Module, rounds: int, threads: int) -> dict[str, Any]:
    macs_dense, macs_pruned = count_macs(dense, INPUT_SHAPE), count_macs(pruned, INPUT_SHAPE)
    theoretical = macs_dense / macs_pruned
    measured = latency(dense, pruned, rounds, threads)
    efficiency = measured[64]["speedup"].median / theoretical
    print(f"  {label}: MACs {macs_dense / 1e6:.1f}M -> {macs_pruned / 1e6:.1f}M, speedup at 64 {measured[64]['speedup'].median:.2f}x", flush=True)
    return {
        "model": label,
        "pruned_by": pair.how,
        "macs_dense": macs_dense,
        "macs_pruned": macs_pruned,
        "params_dense": sum(p.numel() for p in dense.parameters()),
        "params_pruned": sum(p.numel() for p in pruned.parameters()),
        "theoretical": theoretical,
        "latency": measured,
        "efficiency_64": efficiency,
        "goal": pair.goal,
        "goal_met": None if pair.goal is None or theoretical < MIN_THEORETICAL else efficiency >= pair.goal,
    }


def csr_sizes(model: nn.Module) -> dict[str, int]:
    """Bytes of the prunable weights: dense, CSR with int64 indices (torch's), CSR with int32 indices."""
    dense = csr64 = csr32 = 0
    for _, module in prunable_modules(model):
        weight = module.weight.detach().flatten(1)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = weight.to_sparse_csr()
        values, indices = csr.values(), csr.col_indices().numel() + csr.crow_indices().numel()
        dense += weight.numel() * weight.element_size()
        csr64 += values.numel() * values.element_size() + indices * 8
        csr32 += values.numel() * values.element_size() + indices * 4
    return {"dense": dense, "csr_int64": csr64, "csr_int32": csr32}


def pairs(steps: int) -> dict[str, Pair]:
    table = {
        f"resnet20-{label}": Pair("resnet20", f"{method} finalize after {steps} steps",
                                  lambda label=label: method_pruned(label, "resnet20", steps), method=method)
        for label, (method, _) in STRUCTURED.items()
    }  # fmt: skip
    for name in TP_MODELS:
        table[name] = Pair(name, "Torch-Pruning: uniform L1 channel removal to MACs / 2", lambda name=name: halve_macs(fresh(name)))
    table[f"resnet20-global-{SPARSE_COMPRESSION:g}x"] = Pair(
        "resnet20", "global magnitude, masks only (dense format)", lambda: global_pruned(SPARSE_COMPRESSION), goal=None, method="global"
    )
    return table


def runnable(table: dict[str, Pair]) -> tuple[dict[str, Pair], dict[str, str]]:
    kept, skipped = registered({label: pair.method for label, pair in table.items()})
    return {label: table[label] for label in kept}, skipped


def conv_widths(model: nn.Module) -> list[int]:
    """Physical output channels of every Conv layer left, in order (removed branches have none)."""
    return [module.out_channels for module in model.modules() if isinstance(module, nn.Conv2d)]


def rounding(model_name: str, label: str, steps: int, rounds: int, threads: int) -> list[dict[str, Any]]:
    """One row per N of ROUND_TO: the method's model finalized with round_to N, timed at batch 64
    in the same rounds as the dense model and every other N; the best judged N carries the goal."""
    dense = fresh(model_name)
    variants = {f"round_to={n}": method_pruned(label, model_name, steps, n) for n in ROUND_TO}
    measured = timed({"dense": dense, **variants}, 64, rounds, threads)
    macs_dense = count_macs(dense, INPUT_SHAPE)
    rows = []
    for (case, model), n in zip(variants.items(), ROUND_TO):
        macs = count_macs(model, INPUT_SHAPE)
        speedup = measured["speedup"][case]
        rows.append({
            "model": model_name, "method": label, "round_to": n, "macs_dense": macs_dense, "macs_pruned": macs,
            "theoretical": macs_dense / macs, "dense_ms": measured["ms"]["dense"], "pruned_ms": measured["ms"][case],
            "speedup": speedup, "efficiency": speedup.median / (macs_dense / macs), "clock": measured["clock"],
            "widths": conv_widths(model), "best": False, "goal_met": None,
        })  # fmt: skip
    judged_rows = [row for row in rows if row["theoretical"] >= MIN_THEORETICAL]
    if judged_rows:
        best = max(judged_rows, key=lambda row: row["efficiency"])
        best["best"], best["goal_met"] = True, best["efficiency"] >= ROUNDING_GOAL
    print(f"  {model_name} {label}: " + ", ".join(f"N={row['round_to']} {row['efficiency']:.2f}" for row in rows), flush=True)
    return rows


def measure(steps: int, rounds: int, threads: int) -> dict[str, Any]:
    table, skipped = runnable(pairs(steps))
    rows, export = [], None
    for label, pair in table.items():
        pruned = pair.prune()
        rows.append(compare(label, pair, fresh(pair.model), pruned, rounds, threads))
        if pair.goal is None:  # the unstructured model: how small its sparse export is
            export = {"model": label, "bytes": csr_sizes(pruned)}
    labels, _ = registered({label: method for label, (method, _) in STRUCTURED.items()})
    rounded = [row for model_name in ROUNDED_MODELS for label in labels for row in rounding(model_name, label, steps, rounds, threads)]
    return {
        "steps": steps, "rounds": rounds, "threads": threads, "goal": GOAL, "rows": rows, "skipped": skipped,
        "sparse_export": export, "rounding_goal": ROUNDING_GOAL, "rounding": rounded,
    }  # fmt: skip


def render(record: dict[str, Any]) -> None:
    rows = []
    for row in record["rows"]:
        small, large = row["latency"]["1"], row["latency"]["64"]
        rows.append([
            row["model"], f"{row['macs_dense'] / 1e6:.1f} -> {row['macs_pruned'] / 1e6:.1f}", f"{row['theoretical']:.2f}x",
            show(small["speedup"]), f"{large['dense_ms']:.0f} -> {large['pruned_ms']:.0f}", show(large["speedup"]),
            f"{row['efficiency_64']:.2f}", goal_cell(row["goal_met"]),
        ])  # fmt: skip
    rows += [[label, f"skipped: {reason}", *[None] * 6] for label, reason in record["skipped"].items()]
    clock = record["rows"][0]["latency"]["64"]["clock"] if record["rows"] else "-"
    title = f"What pruning buys: CPU inference speedup vs MACs reduction ({record['threads']} thread(s), {record['rounds']} rounds)"
    columns = ["pair", "MMACs", "theoretical", "speedup b1", "ms b64", "speedup b64 [IQR]", f"b64 / theor. (>= {record['goal']})", "met"]
    legend = "; ".join(f"{row['model']}: {row['pruned_by']}" for row in record["rows"])
    caption = f"{legend}\nspeedups judged on {clock}; goal not judged below {MIN_THEORETICAL}x fewer MACs; {machine_caption(record)}"
    print_table(title, columns, rows, caption)
    render_rounding(record)
    export = record["sparse_export"]
    if export:
        sizes = export["bytes"]
        formats = (("dense float32", "dense"), ("CSR, int64 indices (torch)", "csr_int64"), ("CSR, int32 indices", "csr_int32"))
        rows = [[label, f"{sizes[key] / 1024:.0f}", f"{sizes['dense'] / sizes[key]:.2f}x"] for label, key in formats]
        print_table(f"Sparse export: prunable weights of {export['model']}", ["format", "KiB", "smaller than dense"], rows)


def render_rounding(record: dict[str, Any]) -> None:
    rows = [
        [f"{row['model']} {row['method']}", row["round_to"] or "off", f"{row['macs_dense'] / 1e6:.1f} -> {row['macs_pruned'] / 1e6:.1f}",
         f"{row['theoretical']:.2f}x", f"{row['dense_ms']:.0f} -> {row['pruned_ms']:.0f}", show(row["speedup"]), f"{row['efficiency']:.2f}",
         "best" if row["best"] else "", goal_cell(row["goal_met"])]
        for row in record.get("rounding", [])
    ]  # fmt: skip
    if rows:
        title = f"Width rounding (round_to): speedup vs MACs reduction at batch 64 ({record['threads']} thread(s), {record['rounds']} rounds)"
        columns = ["model method", "round_to", "MMACs", "theoretical", "ms b64", "speedup b64 [IQR]", "measured / theor.", "", f"best >= {record['rounding_goal']}"]
        print_table(title, columns, rows, f"each model-method: one training, every N timed in the same rounds; {machine_caption(record)}")


def profile_pair(label: str, pair: Pair, batch: int, rounds: int) -> None:
    """Where the time of the pruned model's forward pass goes, beside the dense model's."""
    inputs = torch.randn(batch, *INPUT_SHAPE)
    models_ = {"dense": fresh(pair.model).eval(), "pruned": pair.prune().eval()}
    passes = {name: forward_passes(model, inputs, 1) for name, model in models_.items()}
    for run in passes.values():
        run()  # warm-up
    stats = profile_ops(passes, rounds)
    print_op_table(stats, "pruned", "dense", f"{label} ({pair.how}): operators by self CPU time, ms per forward pass at batch {batch}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pruning_speedup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="sparsity-training steps of the structured methods before finalize")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per model pair and batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--profile", metavar="PAIR", help="print where the time of PAIR's forward pass goes (batch 64), and stop")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.profile:
        table, _ = runnable(pairs(args.steps))
        if args.profile not in table:
            parser.error(f"--profile: expected one of {', '.join(table)}")
        profile_pair(args.profile, table[args.profile], 64, args.rounds)
        return
    write_result(NAME, measure(args.steps, args.rounds, args.threads))
    render(read_result(NAME))


if __name__ == "__main__":
    main()
