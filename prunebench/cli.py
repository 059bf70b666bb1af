"""`prunebench` command line: run, methods (harness), submit (cluster), leaderboard.

Bad input ends with one line on stderr and exit status 2; a run that failed while training
ends with one line and exit status 1 (its failed record is written); any other exception (a bug)
ends with one line naming the log file that holds its traceback, exit status 1. The line is printable
(core.text): a path or value with a newline or an escape sequence cannot split or forge it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from importlib.metadata import version

from prunebench.cluster.cli import add_parser as add_submit_parser
from prunebench.core.errors import RunFailed, UserError, error_line
from prunebench.core.text import printable
from prunebench.harness.cli import add_parsers as add_run_parsers
from prunebench.leaderboard.cli import add_parser as add_leaderboard_parser


class OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block on bad arguments; we print one line (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="prunebench", description="Benchmark pruning methods under one protocol.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('prunebench')}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_run_parsers(commands)
    add_submit_parser(commands)
    add_leaderboard_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # PYTHONIOENCODING=ascii: escape what it cannot write
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `| head` stopped reading: nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's final flush would fail again
        return 141
    except UserError as exc:
        print(f"prunebench: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"prunebench: run failed: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("prunebench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback in a file the line names
        print(f"prunebench: internal error: {printable(error_line(exc))} (traceback in {crash_log()})", file=sys.stderr)
        return 1


def crash_log() -> str:
    """The current exception's traceback, written to a new file in the temporary directory."""
    handle, path = tempfile.mkstemp(prefix="prunebench-crash-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        log.write(traceback.format_exc())
    return path
