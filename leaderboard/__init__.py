"""Leaderboard: rank finished runs per track, next to the numbers the papers report.

`render_leaderboard` is the one entry point for the CLI and scripts (`render_views` draws one
read in several formats); `build_leaderboard` gives the ranked data for programs that draw
their own views.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from typing import Any

from prunebench.core.errors import UserError

__all__ = ["Leaderboard", "build_leaderboard", "render_leaderboard", "render_views"]


def __getattr__(name: str) -> Any:
    """`Leaderboard` and `build_leaderboard` from the board module, loaded (with pandas) when
    asked for: every `prunebench` command imports this package to build its parser."""
    if name in ("Leaderboard", "build_leaderboard"):
        from prunebench.leaderboard import board

        return getattr(board, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _warn(problems: list[str]) -> None:
    for problem in problems:
        print(f"prunebench leaderboard: warning: {problem}", file=sys.stderr)


def _check_out(out: Path) -> None:
    """Fail before reading anything when --out cannot be a file we write."""
    if out.is_dir():
        raise UserError(f"--out {out}: is a directory")
    if out.exists() and not out.is_file():  # a FIFO would block the write until someone reads it
        raise UserError(f"--out {out}: not a regular file")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: directory {out.parent} does not exist")


def render_views(
    results: str | Path | None,
    formats: Sequence[str],
    sort: str | None = None,
    wandb: str | None = None,
    reported: str = "matched",
    color: bool = False,
    wide: bool = False,
    matched: bool = False,
) -> dict[str, str]:
    """The leaderboard of the runs under `results` (and/or W&B project `wandb`) read once and
    drawn in each of `formats` (table, markdown, csv, json, html): a grid shows its table and
    writes its page from one read of the store; `matched`: the terminal table adds each track's
    matched operating points (the other formats always carry them). Each skipped record is one warning line on
    stderr; bad input raises UserError. `color` and `wide` shape the terminal table (terminal.render)."""
    from prunebench.leaderboard.board import build_leaderboard
    from prunebench.leaderboard.ranking import check_sort
    from prunebench.leaderboard.store import NoReadableRecords
    from prunebench.leaderboard.views import check_format, render, terminal

    check_sort(sort)
    for fmt in formats:
        check_format(fmt)
    try:
        board = build_leaderboard(results, sort=sort, wandb=wandb, reported=reported)
    except NoReadableRecords as exc:
        _warn(exc.problems)  # say which records were skipped and why, then the error
        raise
    _warn(board.problems)
    return {fmt: terminal.render(board, color=color, wide=wide, matched=matched) if fmt == "table" else render(board, fmt) for fmt in formats}


def render_leaderboard(
    results: str | Path | None,
    sort: str | None = None,
    fmt: str = "table",
    out: str | Path | None = None,
    wandb: str | None = None,
    reported: str = "matched",
    color: bool = False,
    wide: bool = False,
    matched: bool = False,
) -> str:
    """The leaderboard as text in `fmt` (render_views), also written to `out` when given."""
    if out is not None:
        _check_out(Path(out))
    text = render_views(results, [fmt], sort=sort, wandb=wandb, reported=reported, color=color, wide=wide, matched=matched)[fmt]
    if out is not None:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--out {out}: cannot write ({exc.strerror or exc.__class__.__name__})") from None
    return text
