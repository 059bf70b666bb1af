"""Scale: how planning a grid and reading the leaderboard grow with the number of runs.

What, each a fresh `prunebench` process timed end to end (interpreter start-up and imports
included), with its peak resident memory (the child's ru_maxrss):
- planning: `prunebench submit GRID --dry-run --yes` of a grid of `--runs` runs (the smoke
  grid's methods dense, global, ltp, dt, psp from configs/smoke/{method}.yaml with a shared dense
  stage, over models and seeds) into an empty storage directory, against the same grid with one
  seed and one model as the reference (start-up, imports and the storage check);
- leaderboard: `prunebench leaderboard DIR --format html --out FILE` over `--records` synthetic
  records (valid `result.json` files of 30-epoch runs with 20 layers each: 7 methods, 4 tracks,
  5 seeds per configuration, one in 50 failed), against the same over `--records // 100`;
  then the page in a real headless Chromium (the HTML tests' browser, offline): seconds until
  the load event, the page's JS heap, and the seconds a click on a column header takes to
  re-sort the largest table.
Generated records go to a temporary directory, removed afterwards.

How: each round runs each case once, in a shuffled order; ratios pair cases of the same round.
Commands are judged on their CPU time (user + system, with the processes they waited for),
which other people's load moves much less than the wall clock; both are recorded.
Goals (issue 13): planning 2,000 runs within 10 s; the leaderboard of 10,000 records within
20 s, its HTML at most 20 MB and usable in Chromium (loaded within 10 s, a sort within 2 s).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import goal_cell, machine_caption, print_table, read_result, spread, write_result
from prunebench.core.storage import RESULT_FILE, json_bytes

NAME = "scale"
REPO = Path(__file__).resolve().parents[1]
PLAN_GOAL_S, BOARD_GOAL_S, HTML_GOAL_MB = 10.0, 20.0, 20.0
LOAD_GOAL_S, SORT_GOAL_S = 10.0, 2.0
PLAN_METHODS = ("dense", "global", "ltp", "dt", "psp")
PLAN_MODELS = ("resnet20", "resnet56")
BOARD_METHODS = ("dense", "global", "ltp", "dt", "psp", "ns", "ot")
STRUCTURED = {"psp", "ns", "ot"}
TRACKS = (("cifar10", "resnet20"), ("cifar10", "resnet56"), ("cifar100", "resnet20"), ("cifar100", "resnet56"))
SEEDS_PER_CONFIGURATION, EPOCHS, LAYERS = 5, 30, 20
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000")  # fmt: skip


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, with the child processes it waited for) and
    peak resident MiB of one command run to completion (it must succeed)."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - began
        if process.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{' '.join(command)}: exit status {process.returncode}\n{log.read().decode()[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux counts KiB


def plan_grid(directory: Path, seeds: int, models: tuple[str, ...]) -> tuple[Path, int]:
    """A grid file of len(PLAN_METHODS) x models x seeds runs; returns it and its run count."""
    grid = {
        "experiment": "scale",
        "storage_path": str(directory / "runs"),
        "method_config": str(REPO / "configs" / "smoke" / "{method}.yaml"),
        "shared_dense": True,
        "axes": {"method": list(PLAN_METHODS), "model": list(models), "seed": list(range(seeds))},
    }
    path = directory / f"grid-{seeds}x{len(models)}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path, len(PLAN_METHODS) * len(models) * seeds


def synthetic_record(index: int, rng: random.Random) -> dict[str, Any]:
    """A valid record of run `index`: configuration index // SEEDS_PER_CONFIGURATION."""
    configuration, seed = divmod(index, SEEDS_PER_CONFIGURATION)
    method = BOARD_METHODS[configuration % len(BOARD_METHODS)]
    dataset, model = TRACKS[(configuration // len(BOARD_METHODS)) % len(TRACKS)]
    variant = configuration // (len(BOARD_METHODS) * len(TRACKS))  # a hyper-parameter setting
    density = 1.0 if method == "dense" else max(0.01, 0.5 / (1 + variant % 40) + rng.uniform(0, 0.01))
    top1 = min(1.0, max(0.0, 0.93 - 0.02 * math.log2(1 / density) + rng.gauss(0, 0.005)))
    macs_dense, params_dense = 40_000_000, 270_000
    failed = index % 50 == 49 and method != "dense"
    trail = [{"epoch": e, "phase": "dense" if method == "dense" else ("prune" if e <= EPOCHS // 2 else "finetune"),
              "train_loss": 2.0 / e, "train_top1": top1 * e / EPOCHS, "val_loss": 2.1 / e, "val_top1": top1 * e / EPOCHS,
              "val_top5": min(1.0, top1 * e / EPOCHS + 0.05), "density": 1 - (1 - density) * min(1.0, 2 * e / EPOCHS),
              "compression": 1 / (1 - (1 - density) * min(1.0, 2 * e / EPOCHS)), "macs": round(macs_dense * density),
              "lr": 0.1 * (1 - e / (EPOCHS + 1)), "seconds": 12.0} for e in range(1, EPOCHS + 1)]  # fmt: skip
    layers = [{"name": f"layer{i // 6 + 1}.{i % 6}.conv", "kind": "conv", "out_channels_dense": 16 << (i // 7),
               "out_channels": 16 << (i // 7), "weights_dense": 2304 << (i // 7), "weights_nonzero": round((2304 << (i // 7)) * density),
               "macs_dense": 2_000_000, "macs": round(2_000_000 * density)} for i in range(LAYERS)]  # fmt: skip
    config_hash = f"{configuration:06d}{seed:06d}"
    record: dict[str, Any] = {
        "schema_version": 2, "run_id": f"{method}-{model}-{dataset}-s{seed}-{config_hash}", "experiment": "scale",
        "config_hash": config_hash, "configuration": f"c{configuration:011d}", "method": method,
        "granularity": "none" if method == "dense" else ("structured" if method in STRUCTURED else "unstructured"),
        "model": model, "dataset": dataset, "seed": seed, "hparams": {} if method == "dense" else {"strength": 1e-4 * (1 + variant)},
        "phases": {"dense": EPOCHS} if method == "dense" else {"prune": EPOCHS // 2, "finetune": EPOCHS - EPOCHS // 2},
        "epochs": EPOCHS, "target_compression": None if method == "dense" else 1 / density, "status": "finished", "error": None,
        "top1": top1, "top5": min(1.0, top1 + 0.05), "prunable_params": params_dense, "prunable_nonzero": round(params_dense * density),
        "density": density, "compression_rate": 1 / density, "macs": round(macs_dense * density), "macs_dense": macs_dense,
        "flops": 2 * round(macs_dense * density), "flops_dense": 2 * macs_dense, "params": round(params_dense * density),
        "params_dense": params_dense, "input_size": [3, 32, 32], "epochs_to_sparsity": None if method == "dense" else EPOCHS // 2,
        "trail": trail, "layers": layers, "wall_seconds": 360.0, "environment": {"torch": "synthetic", "world_size": 1},
    }  # fmt: skip
    if failed:
        record.update(status="failed", error="RunFailed: loss is nan at epoch 7", top1=None, top5=None, density=None,
                      compression_rate=None, macs=None, flops=None, params=None)  # fmt: skip
    return record


def write_records(root: Path, count: int) -> int:
    """`count` result files under root/scale/RUN_ID/; returns their total bytes."""
    rng, total = random.Random(0), 0
    for index in range(count):
        record = synthetic_record(index, rng)
        data = json_bytes(record)
        path = root / "scale" / record["run_id"] / RESULT_FILE
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        total += len(data)
    return total


def open_browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    driver.set_page_load_timeout(600)
    return driver


def in_browser(driver: Any, page: Path) -> dict[str, float]:
    """Seconds to the load event (navigation start to loadEventEnd, as the page measures it),
    the JS heap in MiB, and the seconds a header click takes to re-sort the largest table."""
    driver.get("about:blank")
    driver.get(page.as_uri())
    load_s = driver.execute_script("const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd / 1000;")
    heap = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})["usedSize"] / 2**20
    sort_s = driver.execute_script("""
        const tables = Array.from(document.querySelectorAll('table.sortable'));
        const table = tables.reduce((a, b) => (b.rows.length > a.rows.length ? b : a));
        const began = performance.now();
        table.querySelector('th.num').click();
        document.body.offsetHeight;  // the re-sorted table laid out
        return (performance.now() - began) / 1000;""")
    rows = driver.execute_script("return document.querySelectorAll('tr').length;")
    return {"load_s": load_s, "heap_mib": heap, "sort_s": sort_s, "dom_rows": rows}


def measure_planning(work: Path, runs: int, rounds: int) -> dict[str, Any]:
    seeds = max(1, runs // (len(PLAN_METHODS) * len(PLAN_MODELS)))
    big, big_runs = plan_grid(work, seeds, PLAN_MODELS)
    small, small_runs = plan_grid(work, 1, PLAN_MODELS[:1])
    cases = {"big": big, "small": small}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    memory: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name in random.sample(list(cases), len(cases)):
            seconds, cpu_s, mib = timed([sys.executable, "-m", "prunebench", "submit", str(cases[name]), "--dry-run", "--yes"])
            wall[name].append(seconds)
            cpu[name].append(cpu_s)
            memory[name].append(mib)
    per_run_ms = spread([1000 * (b - s) / (big_runs - small_runs) for b, s in zip(cpu["big"], cpu["small"])])
    return {"runs": big_runs, "reference_runs": small_runs, "seconds": spread(wall["big"]), "reference_seconds": spread(wall["small"]),
            "cpu_s": spread(cpu["big"]), "reference_cpu_s": spread(cpu["small"]), "cpu_ratio": spread([b / s for b, s in zip(cpu["big"], cpu["small"])]),
            "per_run_cpu_ms": per_run_ms, "peak_mib": spread(memory["big"]), "reference_peak_mib": spread(memory["small"]),
            "goal_s": PLAN_GOAL_S, "judged_on": "CPU time", "goal_met": spread(cpu["big"]).median <= PLAN_GOAL_S}  # fmt: skip


def measure_leaderboard(work: Path, records: int, rounds: int, browser: bool) -> dict[str, Any]:
    sizes = {"big": records, "small": max(1, records // 100)}
    results: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "cpu_s": [], "peak_mib": [], "html_mb": []} for name in sizes}
    record_bytes = {}
    for name, count in sizes.items():
        print(f"  writing {count} synthetic records", flush=True)
        record_bytes[name] = write_records(work / name, count)
    for _ in range(rounds):
        for name in random.sample(list(sizes), len(sizes)):
            out = work / f"{name}.html"
            seconds, cpu_s, mib = timed([sys.executable, "-m", "prunebench", "leaderboard", str(work / name), "--format", "html", "--out", str(out)])
            results[name]["seconds"].append(seconds)
            results[name]["cpu_s"].append(cpu_s)
            results[name]["peak_mib"].append(mib)
            results[name]["html_mb"].append(out.stat().st_size / 1e6)
    pages: dict[str, list[dict[str, float]]] = {name: [] for name in sizes}
    if browser:
        profile = work / "chromium-profile"
        driver = open_browser(profile)
        try:
            for _ in range(rounds):
                for name in random.sample(list(sizes), len(sizes)):
                    pages[name].append(in_browser(driver, work / f"{name}.html"))
        finally:
            driver.quit()
    summary: dict[str, Any] = {"records": records, "reference_records": sizes["small"], "record_mb": record_bytes["big"] / 1e6}
    for name, prefix in (("big", ""), ("small", "reference_")):
        for key, values in results[name].items():
            summary[f"{prefix}{key}"] = spread(values)
        for key in ("load_s", "heap_mib", "sort_s"):
            if pages[name]:
                summary[f"{prefix}browser_{key}"] = spread([page[key] for page in pages[name]])
        if pages[name]:
            summary[f"{prefix}dom_rows"] = pages[name][0]["dom_rows"]
    summary["cpu_ratio"] = spread([b / s for b, s in zip(results["big"]["cpu_s"], results["small"]["cpu_s"])])
    summary["judged_on"] = "CPU time"
    summary["goals"] = {"cpu_s": BOARD_GOAL_S, "html_mb": HTML_GOAL_MB, "browser_load_s": LOAD_GOAL_S, "browser_sort_s": SORT_GOAL_S}
    summary["goal_met"] = {key: summary[key].median <= goal for key, goal in summary["goals"].items() if key in summary}
    return summary


def render(record: dict[str, Any]) -> None:
    rows = []
    plan = record.get("planning")
    if plan:
        rows.append([f"plan {plan['runs']:,} runs (--dry-run)", f"{plan['cpu_s']['median']:.1f} s ({plan['seconds']['median']:.1f} s)",
                     f"{plan['peak_mib']['median']:.0f} MiB",
                     f"{plan['reference_cpu_s']['median']:.1f} s, {plan['reference_peak_mib']['median']:.0f} MiB ({plan['reference_runs']} runs)",
                     f"{plan['per_run_cpu_ms']['median']:.2f} ms/run", f"<= {plan['goal_s']:g} s", goal_cell(plan["goal_met"])])  # fmt: skip
    board = record.get("leaderboard")
    if board:
        met = board["goal_met"]
        rows.append([f"leaderboard {board['records']:,} records, HTML", f"{board['cpu_s']['median']:.1f} s ({board['seconds']['median']:.1f} s)",
                     f"{board['peak_mib']['median']:.0f} MiB", f"{board['reference_cpu_s']['median']:.1f} s ({board['reference_records']} records)",
                     f"{board['cpu_ratio']['median']:.1f}x", f"<= {board['goals']['cpu_s']:g} s", goal_cell(met["cpu_s"])])  # fmt: skip
        rows.append(["  HTML size", f"{board['html_mb']['median']:.1f} MB", None, f"{board['reference_html_mb']['median']:.2f} MB", None,
                     f"<= {board['goals']['html_mb']:g} MB", goal_cell(met["html_mb"])])  # fmt: skip
        if "browser_load_s" in board:
            rows.append(["  Chromium: page loaded", f"{board['browser_load_s']['median']:.1f} s", f"{board['browser_heap_mib']['median']:.0f} MiB JS heap",
                         f"{board['reference_browser_load_s']['median']:.2f} s", None, f"<= {board['goals']['browser_load_s']:g} s",
                         goal_cell(met["browser_load_s"])])  # fmt: skip
            rows.append(["  Chromium: sort a column", f"{board['browser_sort_s']['median']:.2f} s", None,
                         f"{board['reference_browser_sort_s']['median']:.3f} s", None, f"<= {board['goals']['browser_sort_s']:g} s",
                         goal_cell(met["browser_sort_s"])])  # fmt: skip
    title = f"Scale: whole `prunebench` commands as the grid and the results grow ({record['rounds']} round(s))"
    columns = ["what", "CPU s (wall s) / size", "peak memory", "reference (same run)", "per run / ratio", "goal", "met"]
    caption = ("commands judged on their CPU time (user + system, the command and the processes it waited for): steadier than the wall "
               f"clock on a shared machine; Chromium's figures are its own clock\n{machine_caption(record)}")  # fmt: skip
    print_table(title, columns, rows, caption)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs of the planned grid (0: skip planning)")
    parser.add_argument("--records", type=int, default=10_000, help="synthetic records of the leaderboard (0: skip it)")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of every case")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in headless Chromium")
    args = parser.parse_args(argv)
    payload: dict[str, Any] = {"rounds": args.rounds}
    work = Path(tempfile.mkdtemp(prefix="prunebench-scale-"))
    try:
        if args.runs:
            print(f"planning: {args.runs} runs", flush=True)
            payload["planning"] = measure_planning(work, args.runs, args.rounds)
        if args.records:
            print(f"leaderboard: {args.records} records", flush=True)
            payload["leaderboard"] = measure_leaderboard(work, args.records, args.rounds, browser=not args.no_browser)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(NAME, payload)
    render(read_result(NAME))


if __name__ == "__main__":
    main()
