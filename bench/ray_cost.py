"""Ray's cost per run: the seconds a run through the embedded Ray cluster takes beyond the same
run in-process, with the fixed start-up separated from the per-run cost.

What: n one-epoch runs of the dense smoke config (configs/smoke/dense.yaml with its dense phase
capped at 1 epoch, ResNet-20 on digits), seeds 0..n-1, for n in `--counts` (default 1 and 4),
each a fresh process timed end to end, with one torch thread on both sides:
- in-process: one Python process running the n configs one after another through the same
  run lifecycle `prunebench run` uses (`python -m bench.ray_cost --child N`), so that the
  interpreter start and imports are paid once, as the fixed cost;
- through Ray: `prunebench submit configs/grids/smoke.yaml` with the dense axis over the n
  seeds, one run at a time (`cluster.max_concurrent_runs=1`, `shared_dense=false`, W&B off):
  cluster start, one Tune trial and one Train worker per run, shutdown.
A least-squares line time = a + b*n per side gives the fixed start-up a and the seconds per
run b; Ray's extra per run is b(Ray) - b(in-process), its extra fixed start a(Ray) - a(in-process).

How: each round runs every command once, in a shuffled order, with a pause after each so that
exiting Ray processes do not overlap the next timing; the fit is made per round (all commands
of one round see the same load), and the median over rounds is reported. Goal: Ray adds at
most 5 s per run beyond its fixed start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.common import goal_cell, interleave, machine_caption, print_table, read_result, spread, write_result
from bench.scheduling import GRID, PAUSE_S, SMOKE, Case, capped_phases, cli

NAME = "ray_cost"
GOAL_S = 5.0  # Ray's extra seconds per run beyond its fixed start
METHOD = "dense"


def phases_override() -> str:
    return f"phases={json.dumps(capped_phases(METHOD, 1))}"


def in_process_command(count: int, out: Path) -> list[str]:
    return [sys.executable, "-m", "bench.ray_cost", "--child", str(count), "--out", str(out)]


def ray_command(count: int, out: Path) -> list[str]:
    axis = json.dumps({METHOD: {"phases": capped_phases(METHOD, 1)}})
    overrides = [f"storage_path={out}", "shared_dense=false", "base.wandb=disabled", f"axes.method={axis}",
                 f"axes.seed={list(range(count))}", "cluster.max_concurrent_runs=1", "cluster.workers_per_run=1"]  # fmt: skip
    return cli("submit", str(GRID), *(arg for override in overrides for arg in ("--set", override)))


def run_children(count: int, out: str) -> None:
    """The in-process side: `count` runs in this process, as `prunebench run` runs each."""
    from prunebench.harness.lifecycle import execute_run
    from prunebench.harness.validation import load_run_config

    for seed in range(count):
        config = load_run_config(str(SMOKE / f"{METHOD}.yaml"), [phases_override(), f"seed={seed}", f"output_dir={out}"])
        record = execute_run(config)
        if record is None or not record.finished:
            raise SystemExit(f"run {config.run_id()} did not finish: {record and record.error}")


def fit(counts: list[int], seconds: list[float]) -> tuple[float, float]:
    """Least-squares a, b of seconds = a + b * count."""
    mean_n, mean_t = sum(counts) / len(counts), sum(seconds) / len(seconds)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in zip(counts, seconds)) / sum((n - mean_n) ** 2 for n in counts)
    return mean_t - slope * mean_n, slope


def measure(counts: list[int], rounds: int) -> dict[str, Any]:
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    cases: dict[str, Case] = {}
    for count in counts:
        cases[f"in-process {count}"] = Case(lambda out, n=count: in_process_command(n, out), one_thread)
        cases[f"ray {count}"] = Case(lambda out, n=count: ray_command(n, out), one_thread)
    for name, case in cases.items():
        print(f"  {name}: {' '.join(case.command(Path('DIR'))[2:])}", flush=True)
    wall = interleave(cases, rounds, warmup=0, pause=PAUSE_S).wall
    sides = {}
    for side in ("in-process", "ray"):
        fits = [fit(counts, [wall[f"{side} {n}"][r] for n in counts]) for r in range(rounds)]
        epochs = {n: sum(cases[f"{side} {n}"].epochs_s[METHOD]) / (rounds * n) for n in counts}  # per run
        sides[side] = {"seconds": {n: spread(wall[f"{side} {n}"]) for n in counts}, "fixed_s": spread([a for a, _ in fits]),
                       "per_run_s": spread([b for _, b in fits]), "epoch_s_per_run": epochs, "fits": fits}  # fmt: skip
    extra_per_run = spread([ray[1] - local[1] for ray, local in zip(sides["ray"]["fits"], sides["in-process"]["fits"])])
    extra_fixed = spread([ray[0] - local[0] for ray, local in zip(sides["ray"]["fits"], sides["in-process"]["fits"])])
    threads = {name: case.threads.get(METHOD) for name, case in cases.items()}
    return {"counts": counts, "rounds": rounds, "method": METHOD, "phases": capped_phases(METHOD, 1), "sides": sides,
            "extra_per_run_s": extra_per_run, "extra_fixed_s": extra_fixed, "goal_s": GOAL_S,
            "goal_met": extra_per_run.median <= GOAL_S, "torch_threads": threads}  # fmt: skip


def render(record: dict[str, Any]) -> None:
    counts = record["counts"]
    rows = []
    for side in ("in-process", "ray"):
        data = record["sides"][side]
        times = ", ".join(f"n={n}: {data['seconds'][str(n)]['median']:.1f} s" for n in counts)
        epoch = sum(data["epoch_s_per_run"].values()) / len(counts)
        rows.append([side, times, f"{data['fixed_s']['median']:.1f} s", f"{data['per_run_s']['median']:.1f} s", f"{epoch:.1f} s", None, None])
    rows.append(["Ray - in-process", None, f"{record['extra_fixed_s']['median']:+.1f} s", f"{record['extra_per_run_s']['median']:+.1f} s",
                 None, f"<= {record['goal_s']:g} s per run", goal_cell(record["goal_met"])])  # fmt: skip
    title = (f"Ray's cost per run: n one-epoch {record['method']} smoke runs, one at a time, fit time = a + b*n "
             f"({record['rounds']} round(s))")  # fmt: skip
    columns = ["side", "whole command", "fixed a", "per run b", "epoch s per run", "goal", "met"]
    print_table(title, columns, rows, machine_caption(record))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,4", help="comma-separated numbers of runs per command (at least two)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of every command")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # the in-process side, run by the benchmark itself
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        run_children(args.child, args.out)
        return
    counts = sorted({int(part) for part in args.counts.split(",") if part.strip()})
    if len(counts) < 2 or counts[0] < 1:
        parser.error("--counts needs at least two different positive numbers")
    write_result(NAME, measure(counts, args.rounds))
    render(read_result(NAME))


if __name__ == "__main__":
    main()
