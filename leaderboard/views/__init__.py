"""Views of a leaderboard: each format is one function from a Leaderboard to text."""

from __future__ import annotations

from collections.abc import Callable

from prunebench.core.errors import UserError
from prunebench.leaderboard.board import Leaderboard
from prunebench.leaderboard.options import FORMATS
from prunebench.leaderboard.views import export, html, markdown, terminal

RENDERERS: dict[str, Callable[[Leaderboard], str]] = {
    "table": terminal.render,
    "markdown": markdown.render,
    "csv": export.render_csv,
    "json": export.render_json,
    "html": html.render,
}
assert tuple(RENDERERS) == FORMATS, "every format of options.FORMATS has its renderer"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: unknown format; expected one of {' | '.join(FORMATS)}")


def render(board: Leaderboard, fmt: str) -> str:
    check_format(fmt)
    return RENDERERS[fmt](board)
