"""`make bench`: run the seven benchmarks one after another and print their tables together.

Each benchmark runs in its own process (no threads, DALI pipelines or Ray state carried from one
to the next) with settings sized so that all seven finish within about 30 minutes on a 2-core
machine; every script run alone takes the same options (`python -m bench.NAME --help`). The
tables are printed again at the end from bench/results/*.json, the record of this run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench import data_loading, method_overhead, pruning_speedup, ray_cost, scale, scheduling, sparse_inference
from bench.common import read_result

REPO = Path(__file__).resolve().parents[1]
# name -> (module, options for the 30-minute budget)
BENCHMARKS = {
    method_overhead.NAME: (method_overhead, ["--rounds", "8"]),
    data_loading.NAME: (data_loading, ["--rounds", "3"]),
    scheduling.NAME: (scheduling, ["--methods", "dense,global", "--max-epochs", "1", "--rounds", "1"]),
    pruning_speedup.NAME: (pruning_speedup, ["--rounds", "5", "--steps", "30"]),  # 30: six trainings (width rounding)
    sparse_inference.NAME: (sparse_inference, ["--rounds", "5"]),
    ray_cost.NAME: (ray_cost, ["--counts", "1,4", "--rounds", "1"]),
    scale.NAME: (scale, ["--runs", "2000", "--records", "10000", "--rounds", "1"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}")
    failed, began = [], time.perf_counter()
    for name in names:
        module, options = BENCHMARKS[name]
        print(f"\n=== {name}: python -m {module.__name__} {' '.join(options)}", flush=True)
        started = time.perf_counter()
        if subprocess.run([sys.executable, "-m", module.__name__, *options], cwd=REPO).returncode != 0:
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(f"\n=== all tables ({time.perf_counter() - began:.0f} s in all)\n", flush=True)
    for name in names:
        record = read_result(name)
        if name in failed or record is None:
            print(f"{name}: failed, no table (see its output above)\n")
        else:
            BENCHMARKS[name][0].render(record)
            print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
