"""`prunebench leaderboard`: the subcommand's arguments; prunebench/cli.py registers it."""

from __future__ import annotations

import argparse
import sys

from prunebench.core.text import printable
from prunebench.leaderboard.options import FORMATS, REPORTED_MODES, SORT_KEYS

DEFAULT_RESULTS = "runs"  # where `prunebench run` and grids store runs unless told otherwise


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `leaderboard` on the top-level CLI; its func returns the exit status."""
    parser = subparsers.add_parser(
        "leaderboard",
        help="rank finished runs per track",
        description="Rank finished runs per track (data set, model, input size, granularity), seeds aggregated, "
        "next to the numbers the papers report.",
    )
    parser.add_argument("results", nargs="?", metavar="RESULTS", help="directory or storage URI (s3://BUCKET/PREFIX) searched recursively "
                        f"for result.json files (default: {DEFAULT_RESULTS}, unless --wandb is given)")  # fmt: skip
    # sort and format are checked by the leaderboard, so a bad value is one clear line (exit 2)
    parser.add_argument("--sort", metavar="KEY", help=f"rank by {' | '.join(SORT_KEYS)}: higher compression, top-1, top-5 first; fewer FLOPs, "
                        "epochs, total epochs (the shared dense stage counted), device-seconds first; speedup: faster first, each measuring device ranked on its own "
                        "(default: Pareto front of top-1 and compression first, then top-1)")  # fmt: skip
    parser.add_argument("--format", default="table", metavar="FORMAT", help=f"{' | '.join(FORMATS)} (default: table)")
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    parser.add_argument("--wide", action="store_true", help="table: every column at full width (default: the main columns, fitted "
                        "to the terminal's width)")  # fmt: skip
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read the finished runs of this W&B project (online)")
    parser.add_argument("--reported", default="matched", metavar="WHICH",
                        help=f"papers' rows to show: {' | '.join(REPORTED_MODES)} (default: matched = tracks with measured runs)")  # fmt: skip
    parser.add_argument("--matched", action="store_true",
                        help="table: add each track's matched operating points (top-1 at 2, 4, 8, 16, 32x; the other formats always have them)")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from prunebench.leaderboard import render_leaderboard  # pandas loads when the command runs

    color = args.format == "table" and args.out is None and sys.stdout.isatty()
    results = args.results or (None if args.wandb else DEFAULT_RESULTS)
    text = render_leaderboard(results, args.sort, args.format, args.out, args.wandb, args.reported, color, args.wide, args.matched)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"leaderboard written to {printable(args.out)}", file=sys.stderr)
    return 0
