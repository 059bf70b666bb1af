"""What every benchmark shares: interleaved timing, ratio statistics, the machine description,
result files and tables.

Timings on a shared machine drift with other people's load, so a case is never compared with a
number measured earlier: every round times each case once, in a fresh random order, and a ratio
is taken between cases of the same round. The median over rounds is the claim; the inter-quartile
range (and min/max in the JSON) says how much to trust it.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from rich.console import Console
from rich.table import Table
from torch.profiler import ProfilerActivity, profile

from prunebench.core.device import cpu_model

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = RESULTS_DIR / "cache"  # generated inputs, git-ignored
LOAD_AT_START = os.getloadavg()[0]  # when a benchmark process imports this module


@dataclass(frozen=True)
class Spread:
    """Median with quartiles and extremes of repeated measurements."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    values = sorted(values)
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(statistics.median(values), q1, q3, values[0], values[-1], len(values))


@dataclass
class Timings:
    """Seconds per call of every case: wall clock, and CPU time of this process (all its threads).
    With one thread, CPU time moves much less with other people's load than the wall clock does."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleave(cases: Mapping[str, Callable[[], Any]], rounds: int, warmup: int = 1, pause: float = 0.0, seed: int = 0) -> Timings:
    """Time every case once per round, in a shuffled order each round. `warmup` untimed rounds
    come first (lazy initialisation, allocator and cache warm-up). An untimed `pause` after every
    call lets a case's background work (prefetching, exiting processes) end outside the next timing."""
    order = list(cases)
    timings = Timings({name: [] for name in cases}, {name: [] for name in cases})
    shuffle = random.Random(seed).shuffle
    for index in range(warmup + rounds):
        shuffle(order)
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            cases[name]()
            if index >= warmup:
                timings.wall[name].append(time.perf_counter() - wall)
                timings.cpu[name].append(time.process_time() - cpu)
            time.sleep(pause)
    return timings


def judged(timings: Timings, threads: int) -> tuple[str, dict[str, list[float]]]:
    """The clock a goal is judged on: CPU time with one thread, which the neighbours' load moves
    much less than the wall clock; with more threads the wall clock, as CPU time would also count
    spin-waiting threads."""
    return ("CPU time", timings.cpu) if threads == 1 else ("wall clock", timings.wall)


def ratios(times: Mapping[str, Sequence[float]], reference: str) -> dict[str, Spread]:
    """case / reference, paired round by round (both measured under the same load), summarised."""
    base = times[reference]
    return {name: spread([t / r for t, r in zip(values, base)]) for name, values in times.items()}


def registered(method_of: Mapping[str, str | None]) -> tuple[list[str], dict[str, str]]:
    """The cases whose method is registered (or that need none), and the others with the reason
    they are skipped, printed as a note: methods land while the benchmarks are in use."""
    from prunebench import methods

    available = set(methods.available())
    skipped = {case: f"method {method!r} not registered yet" for case, method in method_of.items() if method not in (None, *available)}
    for case, reason in skipped.items():
        print(f"note: skipping {case}: {reason}", flush=True)
    return [case for case in method_of if case not in skipped], skipped


OpStats = dict[str, dict[str, float]]  # operator (profiler key) -> self_ms, total_ms, calls per call of a case


def profile_ops(cases: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, OpStats]:
    """torch.profiler's operator statistics per call of every case. Each call is profiled on its
    own, alternating between the cases, so that all of them see the same load."""
    stats: dict[str, OpStats] = {name: defaultdict(lambda: {"self_ms": 0.0, "total_ms": 0.0, "calls": 0.0}) for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run()
            for event in prof.key_averages():
                entry = stats[name][event.key]
                entry["self_ms"] += event.self_cpu_time_total / 1000 / rounds
                entry["total_ms"] += event.cpu_time_total / 1000 / rounds
                entry["calls"] += event.count / rounds
    return stats


def print_op_table(stats: Mapping[str, OpStats], focus: str, reference: str, title: str, limit: int = 25) -> None:
    """The `focus` case's operators by self CPU time, with the reference case's beside them."""
    mine, base = stats[focus], stats[reference]
    rows = []
    for op in sorted(mine, key=lambda op: mine[op]["self_ms"], reverse=True)[:limit]:
        theirs = base[op]["self_ms"] if op in base else 0.0
        rows.append([op, f"{mine[op]['calls']:.0f}", f"{mine[op]['self_ms']:.1f}", f"{theirs:.1f}", f"{mine[op]['self_ms'] - theirs:+.1f}"])
    total = [sum(entry["self_ms"] for entry in side.values()) for side in (mine, base)]
    rows.append(["all operators", None, f"{total[0]:.1f}", f"{total[1]:.1f}", f"{total[0] - total[1]:+.1f}"])
    print_table(title, ["operator", "calls", f"{focus} ms", f"{reference} ms", "difference"], rows)


def machine() -> dict[str, Any]:
    """What produced the numbers: cores, threads, versions, and how busy the machine was."""
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "processor": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average_1m": {"start": round(LOAD_AT_START, 2), "end": round(os.getloadavg()[0], 2)},
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/NAME.json with the machine description and a timestamp, written atomically."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), **payload}
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Spread):
        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def show(value: Mapping[str, float], unit: str = "x", digits: int = 2) -> str:
    """A Spread as written to JSON, as '1.04x [1.01-1.07]': median [inter-quartile range]."""
    return f"{value['median']:.{digits}f}{unit} [{value['q1']:.{digits}f}-{value['q3']:.{digits}f}]"


def goal_cell(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "[bold red]NO[/]")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> None:
    table = Table(title=title, caption=caption, caption_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    Console(width=max(120, Console().width)).print(table)


def machine_caption(record: dict[str, Any]) -> str:
    """One line under a table: where and under what load it was measured."""
    m = record["machine"]
    load = m["load_average_1m"]
    return (f"{record['created']}  {m['processor']}, {m['usable_cores']} cores, torch {m['torch']}, {m['torch_threads']} "
            f"thread(s), load {load['start']} -> {load['end']}  -> bench/results/{record['benchmark']}.json")  # fmt: skip
