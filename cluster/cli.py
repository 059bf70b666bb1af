"""`prunebench submit GRID`: run a benchmark grid on a Ray cluster.

Every check that can fail on bad input (grid, runs, storage, address, cluster size) runs before
anything is scheduled; they raise UserError, which `prunebench` prints as one line (exit 2).
Exit 1 when a run failed, 0 when every run finished.
"""

from __future__ import annotations

import argparse
import sys

from prunebench.cluster.address import split_address
from prunebench.core.text import printable

# Runs a grid may have unless the user confirms more (`--max-runs N`, `--yes`).
DEFAULT_MAX_RUNS = 1000


def positive_int(text: str) -> int:
    """argparse type of --max-runs: a bad value is argparse's one-line error (exit 2)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("submit", help="run a benchmark grid as DDP jobs on a Ray cluster")
    parser.add_argument("grid", help="grid YAML (configs/grids/*.yaml)")
    parser.add_argument("--address", type=ray_address, help="Ray cluster: HOST:PORT, ray://HOST:10001 or auto (default: start one on this machine)")
    parser.add_argument("--resume", action="store_true", help="also retry runs recorded as failed, from their last checkpoint")
    parser.add_argument("--dry-run", action="store_true", help="print one line per run, a summary and the cost (epochs, images), and stop")
    parser.add_argument("--max-runs", type=positive_int, default=DEFAULT_MAX_RUNS, metavar="N",
                        help=f"refuse a grid of more than N runs (default {DEFAULT_MAX_RUNS}) unless --yes")  # fmt: skip
    parser.add_argument("--yes", action="store_true", help="plan and run the grid whatever its number of runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a grid value (YAML)")
    parser.set_defaults(func=submit)


def ray_address(text: str) -> str:
    """--address checked when the command line is read, before any planning or Ray import."""
    if text not in ("auto", "local") and split_address(text) is None:
        raise argparse.ArgumentTypeError(f"{text}: expected HOST:PORT (a port in 1-65535), ray://HOST:PORT or auto")
    return text


def submit(args: argparse.Namespace) -> int:
    # Imported here: every `prunebench` command builds this parser, and planning loads the method
    # and model registries (torch); the leaderboard and `--help` need none of it.
    from prunebench.cluster.plan import FINISHED, plan_cost, plan_grid, plan_lines, plan_summary, renamed_warning

    plan = plan_grid(args.grid, args.set, max_runs=None if args.yes else args.max_runs)
    warning = renamed_warning(plan.renamed_runs())
    if warning:
        print(f"prunebench submit: {warning}", file=sys.stderr)
    if args.dry_run:
        states = plan.states()
        print("\n".join([*plan_lines(plan, states), plan_summary(plan, states), plan_cost(plan, states)]))
        return 0
    plan.storage.check_writable(plan.grid.experiment)
    from prunebench.cluster.session import check_resources, ray_session  # Ray loads only when a grid really runs
    from prunebench.cluster.submit import run_grid, write_leaderboard

    with ray_session(args.address):
        check_resources(plan.grid.cluster)
        states = plan.states()
        print(plan_summary(plan, states), plan_cost(plan, states), sep="\n", flush=True)
        states = run_grid(plan, resume=args.resume)
    table, page = write_leaderboard(plan)
    print(table)
    print(printable(f"leaderboard: {page}"))
    unfinished = {run_id: state for run_id, state in states.items() if state != FINISHED}
    for run_id, state in unfinished.items():
        record = plan.run_files(run_id).read_result()  # only a skipped run has none
        print(printable(f"{run_id}: {state}: {record['error'] if record else 'its dense stage did not finish'}"))
    return 1 if unfinished else 0
