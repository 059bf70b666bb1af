"""Scheduling overhead: what running through the embedded Ray cluster adds to the wall time.

What: the smoke benchmark's runs (configs/smoke/METHOD.yaml, ResNet-20 on digits), each command a
fresh `prunebench` process timed end to end (interpreter start-up, imports, training, evaluation,
writing results; for `submit` also starting and stopping the local Ray cluster):
- in-process: `prunebench run configs/smoke/METHOD.yaml --out DIR`, once per method, one after
  another; once with torch's default threads (one per core) and once with OMP_NUM_THREADS=1;
- one run through Ray: `prunebench submit configs/grids/smoke.yaml` restricted to `--single`;
- the grid through Ray: the same `submit` with every method of `--methods`, once as configured
  (up to `max_concurrent_runs` runs at a time) and once one run at a time
  (`cluster.max_concurrent_runs=1`).
A Ray worker with a fractional CPU (the grid's `cpus_per_worker: 0.9`) runs with OMP_NUM_THREADS=1.
So the table compares: one run, as a user would start it; the grid as configured against its runs
started one after another in-process (the user's view: the goal); and the grid one run at a time
against one-thread in-process runs, which leaves only what Ray itself adds (the same computation
on the same cores). The grid runs with `shared_dense=false`, so it trains exactly the configs the
in-process runs train (with a shared dense stage it would train less), and with W&B off on both
sides (`base.wandb=disabled`; in-process runs default to it). `--max-epochs` caps every phase of
every method (through `--set`, on both sides) to fit `make bench`'s budget.

How: each round runs every command once, in a shuffled order, each into a fresh temporary storage
directory, with a pause after each so exiting Ray processes do not overlap the next timing. Ratios
pair commands of the same round; median and spread (min-max with few rounds). Beside each wall
time, the seconds the runs spent in their epochs (their trail's per-epoch seconds, summed over
runs) separate fixed costs (start-up, Ray, test evaluation, checkpoints, results) from training.
Goal: Ray adds at most 20% to the smoke grid (ratio <= 1.20). With capped epochs the fixed costs
weigh more than in the full grid; `--max-epochs 0` runs the configs unchanged (the full smoke grid
takes about 15 minutes on 2 cores through Ray, and more in-process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from prunebench import methods
from bench.common import goal_cell, interleave, machine_caption, print_table, read_result, show, spread, write_result
from prunebench.harness.config import load_yaml

NAME = "scheduling"
REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke"
GRID = REPO / "configs" / "grids" / "smoke.yaml"
GOAL = 1.20  # Ray grid wall time over the sum of the in-process runs
PAUSE_S = 3.0


def capped_phases(method: str, max_epochs: int) -> dict[str, dict[str, Any]]:
    """The phases of configs/smoke/METHOD.yaml with every epoch count capped (0: unchanged)."""
    phases = {}
    for name, value in load_yaml(SMOKE / f"{method}.yaml")["phases"].items():
        section = dict(value) if isinstance(value, dict) else {"epochs": value}
        if max_epochs:
            section["epochs"] = min(section["epochs"], max_epochs)
        phases[name] = section
    return phases


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "prunebench", *args]


def run_command(method: str, out: Path, max_epochs: int) -> list[str]:
    phases = json.dumps(capped_phases(method, max_epochs))
    return cli("run", str(SMOKE / f"{method}.yaml"), "--out", str(out), "--set", f"phases={phases}")


def submit_command(names: list[str], out: Path, max_epochs: int, one_at_a_time: bool = False) -> list[str]:
    axis = json.dumps({name: {"phases": capped_phases(name, max_epochs)} for name in names})
    overrides = [f"storage_path={out}", "shared_dense=false", "base.wandb=disabled", f"axes.method={axis}"]
    if one_at_a_time:
        overrides.append("cluster.max_concurrent_runs=1")
    return cli("submit", str(GRID), *(arg for override in overrides for arg in ("--set", override)))


class Case:
    """One timed command; every call runs it into a fresh storage directory and keeps what its
    result files say per method: seconds spent in epochs (the trail's per-epoch seconds: training
    and validation, without set-up, test evaluation and checkpoints) and torch threads."""

    def __init__(self, command: Callable[[Path], list[str]], env: dict[str, str] | None = None) -> None:
        self.command, self.env = command, env  # command: storage directory -> argv
        self.epochs_s: dict[str, list[float]] = defaultdict(list)
        self.threads: dict[str, int] = {}

    def __call__(self) -> None:
        out = Path(tempfile.mkdtemp(prefix="prunebench-bench-"))
        try:
            log = out / "log.txt"
            with log.open("w") as stream:
                done = subprocess.run(self.command(out), cwd=REPO, stdout=stream, stderr=subprocess.STDOUT, env=self.env)
            if done.returncode != 0:
                tail = "\n".join(log.read_text().splitlines()[-15:])
                raise RuntimeError(f"{' '.join(self.command(out))}: exit status {done.returncode}\n{tail}")
            for path in out.glob("*/*/result.json"):
                record = json.loads(path.read_text())
                self.epochs_s[record["method"]].append(sum(entry["seconds"] for entry in record["trail"]))
                self.threads[record["method"]] = record["environment"].get("torch_threads")
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def total_epochs_s(self) -> list[float]:
        """Per call: epoch seconds summed over the runs it made."""
        return [sum(values) for values in zip(*self.epochs_s.values())]


def measure(names: list[str], single: str, max_epochs: int, rounds: int) -> dict[str, Any]:
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    cases = {}
    for name in names:
        cases[f"run {name}"] = Case(lambda out, m=name: run_command(m, out, max_epochs))
        cases[f"run 1 thread {name}"] = Case(lambda out, m=name: run_command(m, out, max_epochs), one_thread)
    cases["ray single"] = Case(lambda out: submit_command([single], out, max_epochs))
    cases["ray grid"] = Case(lambda out: submit_command(names, out, max_epochs))
    cases["ray grid, one at a time"] = Case(lambda out: submit_command(names, out, max_epochs, one_at_a_time=True))
    for name, case in cases.items():
        print(f"  {name}: {' '.join(case.command(Path('DIR'))[2:])}", flush=True)
    wall = interleave(cases, rounds, warmup=0, pause=PAUSE_S).wall
    concurrent = load_yaml(GRID)["cluster"]["max_concurrent_runs"]
    comparisons = [  # (row, in-process commands summed, Ray command, judged against the goal)
        (f"one run ({single})", [f"run {single}"], "ray single", False),
        (f"grid as configured ({concurrent} at a time)", [f"run {name}" for name in names], "ray grid", True),
        ("grid one run at a time, 1 thread", [f"run 1 thread {name}" for name in names], "ray grid, one at a time", True),
    ]
    rows = []
    for label, local_cases, ray, judged_on_goal in comparisons:
        local_wall = [sum(values) for values in zip(*(wall[case] for case in local_cases))]
        ratio = spread([r / l for r, l in zip(wall[ray], local_wall)])
        rows.append({
            "label": label,
            "in_process": local_cases,
            "ray": ray,
            "in_process_s": spread(local_wall),
            "ray_s": spread(wall[ray]),
            "in_process_epochs_s": sum(spread(cases[case].total_epochs_s()).median for case in local_cases),
            "ray_epochs_s": spread(cases[ray].total_epochs_s()).median,
            "ratio": ratio,
            "goal": GOAL if judged_on_goal else None,
            "goal_met": ratio.median <= GOAL if judged_on_goal else None,
        })  # fmt: skip
    threads = {name: case.threads for name, case in cases.items()}
    return {"methods": names, "single": single, "max_epochs": max_epochs or None, "rounds": rounds, "concurrent_runs": concurrent,
            "phases": {name: capped_phases(name, max_epochs) for name in names}, "rows": rows, "torch_threads": threads}  # fmt: skip


def render(record: dict[str, Any]) -> None:
    rows = [[row["label"], f"{row['in_process_s']['median']:.1f} s ({row['in_process_epochs_s']:.1f} s)",
             f"{row['ray_s']['median']:.1f} s ({row['ray_epochs_s']:.1f} s)", show(row["ratio"]),
             None if row["goal"] is None else f"<= {row['goal']:.2f}x", goal_cell(row["goal_met"])] for row in record["rows"]]  # fmt: skip
    epochs_note = "as configured" if record["max_epochs"] is None else f"phases capped at {record['max_epochs']} epoch(s)"
    title = (f"Scheduling: embedded Ray cluster vs in-process `prunebench run` ({', '.join(record['methods'])}; smoke configs, "
             f"{epochs_note}; {record['rounds']} round(s))")  # fmt: skip
    columns = ["what", "in-process (epochs)", "through Ray (epochs)", "Ray / in-process [spread]", "goal", "met"]
    threads = record["torch_threads"]
    single = record["single"]
    caption = (f"wall time of the whole command(s); in brackets the runs' own per-epoch seconds, summed over runs. torch threads: "
               f"`run` {threads[f'run {single}'].get(single)}, `run` with OMP_NUM_THREADS=1 {threads[f'run 1 thread {single}'].get(single)}, "
               f"Ray worker {threads['ray single'].get(single)}\n{machine_caption(record)}")  # fmt: skip
    print_table(title, columns, rows, caption)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="dense,global", help="comma-separated methods of the smoke grid to run")
    parser.add_argument("--single", help="the method of the one-run comparison (default: the first of --methods)")
    parser.add_argument("--max-epochs", type=int, default=1, help="cap on every phase's epochs; 0 keeps the configs' epochs")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of every case")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.methods.split(",") if name.strip()]
    chosen = [name for name in wanted if name in methods.available() and (SMOKE / f"{name}.yaml").is_file()]
    for name in sorted(set(wanted) - set(chosen)):
        print(f"note: skipping {name}: not registered yet or no configs/smoke/{name}.yaml", flush=True)
    if not chosen:
        parser.error("no runnable method in --methods")
    single = args.single or chosen[0]
    if single not in chosen:
        parser.error(f"--single {single} is not among the runnable --methods")
    write_result(NAME, measure(chosen, single, args.max_epochs, args.rounds))
    render(read_result(NAME))


if __name__ == "__main__":
    main()
