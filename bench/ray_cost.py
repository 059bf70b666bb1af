"""Ray's cost per run: the seconds a run through the embedded Ray cluster takes beyond the same
run in-process, for one-worker runs (trained in their Tune trial) and two-worker runs (a Ray
Train job), with the fixed start-up per grid separated from the per-run cost.

What: n one-epoch runs of the dense smoke config (configs/smoke/dense.yaml with its dense phase
capped at 1 epoch, ResNet-20 on digits), seeds 0..n-1, for n in `--counts` (default 1 and 4),
each a fresh process timed end to end, with one torch thread on every side:
- in-process: one Python process running the n configs one after another through the same
  run lifecycle `prunebench run` uses (`python -m bench.ray_cost --child N`), so that the
  interpreter start and imports are paid once, as the fixed cost;
- through Ray, 1 and 2 workers per run: `prunebench submit configs/grids/smoke.yaml` with the
  dense axis over the n seeds, one run at a time (`cluster.max_concurrent_runs=1`,
  `shared_dense=false`, W&B off): cluster start, one Tune trial per run (and with 2 workers a
  Ray Train job of two DDP workers), shutdown.
A least-squares line time = a + b*n per side gives the fixed start-up a and the seconds per
run b; Ray's extra per run is b(Ray) - b(in-process), its extra fixed start a(Ray) - a(in-process).

How: each round runs every command once, in a shuffled order, with a pause after each so that
exiting Ray processes do not overlap the next timing; the fit is made per round (all commands
of one round see the same load), and the median over rounds is reported, with the 1-minute
load average at the start of every command. Goals: Ray adds at most 5 s per one-worker run and
at most 15 s per two-worker run beyond its fixed start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from bench.common import goal_cell, interleave, machine_caption, print_table, read_result, spread, write_result
from bench.scheduling import GRID, PAUSE_S, SMOKE, Case, capped_phases, cli

NAME = "ray_cost"
GOALS_S = {1: 5.0, 2: 15.0}  # workers per run: Ray's extra seconds per run beyond its fixed start
METHOD = "dense"
IN_PROCESS = "in-process"


def ray_side(workers: int) -> str:
    return f"ray, {workers} worker{'s' if workers > 1 else ''}"


def phases_override() -> str:
    return f"phases={json.dumps(capped_phases(METHOD, 1))}"


def in_process_command(count: int, out: Path) -> list[str]:
    return [sys.executable, "-m", "bench.ray_cost", "--child", str(count), "--out", str(out)]


def ray_command(count: int, out: Path, workers: int) -> list[str]:
    axis = json.dumps({METHOD: {"phases": capped_phases(METHOD, 1)}})
    overrides = [f"storage_path={out}", "shared_dense=false", "base.wandb=disabled", f"axes.method={axis}",
                 f"axes.seed={list(range(count))}", "cluster.max_concurrent_runs=1", f"cluster.workers_per_run={workers}"]  # fmt: skip
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
        cases[f"{IN_PROCESS} {count}"] = Case(lambda out, n=count: in_process_command(n, out), one_thread)
        for workers in GOALS_S:
            cases[f"{ray_side(workers)} {count}"] = Case(lambda out, n=count, w=workers: ray_command(n, out, w), one_thread)
    for name, case in cases.items():
        print(f"  {name}: {' '.join(case.command(Path('DIR'))[2:])}", flush=True)
    loads: list[float] = []

    def with_load(case: Case) -> Callable[[], None]:
        def call() -> None:
            loads.append(round(os.getloadavg()[0], 2))
            case()

        return call

    wall = interleave({name: with_load(case) for name, case in cases.items()}, rounds, warmup=0, pause=PAUSE_S).wall
    sides = {side: fitted(side, counts, rounds, wall, cases) for side in (IN_PROCESS, *map(ray_side, GOALS_S))}
    local = sides[IN_PROCESS]["fits"]
    extras = {}
    for workers, goal in GOALS_S.items():
        fits = sides[ray_side(workers)]["fits"]
        per_run = spread([ray[1] - mine[1] for ray, mine in zip(fits, local)])
        extras[workers] = {"per_run_s": per_run, "fixed_s": spread([ray[0] - mine[0] for ray, mine in zip(fits, local)]),
                           "goal_s": goal, "goal_met": per_run.median <= goal}  # fmt: skip
    threads = {name: case.threads.get(METHOD) for name, case in cases.items()}
    return {"counts": counts, "rounds": rounds, "method": METHOD, "phases": capped_phases(METHOD, 1), "sides": sides,
            "extra": extras, "load_at_each_command": loads, "torch_threads": threads}  # fmt: skip


def fitted(side: str, counts: list[int], rounds: int, wall: dict[str, list[float]], cases: dict[str, Case]) -> dict[str, Any]:
    """One side's times, and its line a + b*n fitted per round."""
    fits = [fit(counts, [wall[f"{side} {n}"][r] for n in counts]) for r in range(rounds)]
    epochs = {n: sum(cases[f"{side} {n}"].epochs_s[METHOD]) / (rounds * n) for n in counts}  # per run
    return {"seconds": {n: spread(wall[f"{side} {n}"]) for n in counts}, "fixed_s": spread([a for a, _ in fits]),
            "per_run_s": spread([b for _, b in fits]), "epoch_s_per_run": epochs, "fits": fits}  # fmt: skip


def render(record: dict[str, Any]) -> None:
    counts = record["counts"]
    rows = []
    for side, data in record["sides"].items():
        times = ", ".join(f"n={n}: {data['seconds'][str(n)]['median']:.1f} s" for n in counts)
        epoch = sum(data["epoch_s_per_run"].values()) / len(counts)
        rows.append([side, times, f"{data['fixed_s']['median']:.1f} s", f"{data['per_run_s']['median']:.1f} s", f"{epoch:.1f} s", None, None])
    for workers, extra in record["extra"].items():
        rows.append([f"{ray_side(int(workers))} - {IN_PROCESS}", None, f"{extra['fixed_s']['median']:+.1f} s",
                     f"{extra['per_run_s']['median']:+.1f} s", None, f"<= {extra['goal_s']:g} s per run", goal_cell(extra["goal_met"])])  # fmt: skip
    loads = record["load_at_each_command"]
    title = (f"Ray's cost per run: n one-epoch {record['method']} smoke runs, one at a time, fit time = a + b*n "
             f"({record['rounds']} round(s), load {min(loads):g}-{max(loads):g} at the commands' starts)")  # fmt: skip
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
