"""`prunebench` command line: run, methods, submit, leaderboard.

Bad input ends with one line on stderr and exit status 2; a run that failed while training
ends with one line and exit status 1 (its failed record is written).
"""

from __future__ import annotations

import argparse
import sys

from cluster.cli import add_parser as add_submit_parser
from harness.errors import RunFailed, UserError
from leaderboard.cli import add_parser as add_leaderboard_parser


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import load_run_config
    from harness.runner import run_local

    overrides = list(args.set or [])
    if args.out:
        overrides.append(f"output_dir={args.out}")
    config = load_run_config(args.config, overrides)
    record, run_dir = run_local(config, resume=args.resume)
    if record["status"] != "finished":
        print(f"run failed: {record['error']} (recorded in {run_dir / 'result.json'})", file=sys.stderr)
        return 1
    print(
        f"{record['run_id']}: top-1 {record['top1']:.4f} top-5 {record['top5']:.4f} "
        f"density {record['density']:.4f} ({record['compression_rate']:.2f}x) "
        f"MACs {record['macs'] / 1e6:.2f}M of {record['macs_dense'] / 1e6:.2f}M -> {run_dir / 'result.json'}"
    )
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    import methods

    for name in methods.available():
        cls = methods.get(name)
        print(f"{name:<8} {cls.granularity:<12} {cls.summary}")
        if args.hparams:
            for field, info in cls.Hparams.model_fields.items():
                print(f"    {field} = {info.default!r}: {info.description or ''}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block on bad arguments; we print one line (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="prunebench", description="Benchmark pruning methods under one protocol.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser("run", help="run one config in this process")
    run.add_argument("config", help="run config YAML")
    run.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a config value (YAML)")
    run.add_argument("--out", help="storage directory (config output_dir)")
    run.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    run.set_defaults(func=cmd_run)

    listing = commands.add_parser("methods", help="list the registered pruning methods")
    listing.add_argument("--hparams", action="store_true", help="also list each method's hyper-parameters and defaults")
    listing.set_defaults(func=cmd_methods)

    add_submit_parser(commands)
    add_leaderboard_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"prunebench: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"prunebench: run failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prunebench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
