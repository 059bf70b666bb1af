"""`prunebench submit GRID`: run a benchmark grid on a Ray cluster.

Every check that can fail on bad input (grid, runs, storage, address, cluster size) runs before
anything is scheduled; they raise UserError, which `prunebench` prints as one line (exit 2).
Exit 1 when a run failed, 0 when every run finished.
"""

from __future__ import annotations

import argparse

from cluster.plan import FINISHED, plan_grid, plan_lines, plan_summary


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("submit", help="run a benchmark grid as DDP jobs on a Ray cluster")
    parser.add_argument("grid", help="grid YAML (configs/grids/*.yaml)")
    parser.add_argument("--address", help="Ray cluster: HOST:PORT, ray://HOST:10001 or auto (default: start one on this machine)")
    parser.add_argument("--resume", action="store_true", help="also retry runs recorded as failed, from their last checkpoint")
    parser.add_argument("--dry-run", action="store_true", help="print one line per run and stop")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a grid value (YAML)")
    parser.set_defaults(func=submit)


def submit(args: argparse.Namespace) -> int:
    plan = plan_grid(args.grid, args.set)
    if args.dry_run:
        print("\n".join(plan_lines(plan)))
        return 0
    plan.storage.check_writable(plan.grid.experiment)
    from cluster.session import check_resources, ray_session  # Ray loads only when a grid really runs
    from cluster.submit import results_table, run_grid

    with ray_session(args.address):
        check_resources(plan.grid.cluster)
        print(plan_summary(plan), flush=True)
        states = run_grid(plan, resume=args.resume)
    print(results_table(plan))
    unfinished = {run_id: state for run_id, state in states.items() if state != FINISHED}
    for run_id, state in unfinished.items():
        record = plan.run_files(run_id).read_result()  # only a skipped run has none
        print(f"{run_id}: {state}: {record['error'] if record else 'its dense stage did not finish'}")
    return 1 if unfinished else 0
