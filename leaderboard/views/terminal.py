"""The leaderboard as terminal tables (rich): one table per track, failed runs apart.

Run names, hyper-parameters and errors come from result files anyone can write, so every such
string is escaped before rich reads it as markup.
"""

from __future__ import annotations

import io
import shutil

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from prunebench.leaderboard.board import Leaderboard, Track
from prunebench.leaderboard.views.columns import CLAIM_HEADERS, COLUMNS, MATCHED, claim_cells, matched_table, on_front, reference_line


def _track_table(track: Track) -> Table:
    table = Table(title=escape(track.key.label), caption=escape(reference_line(track.rows, track.reference)), title_justify="left", expand=False)
    for column in COLUMNS:
        table.add_column(escape(column.header), justify="right" if column.numeric else "left", overflow="fold")
    measured = int((track.rows["kind"] == "measured").sum())
    for position, (_, row) in enumerate(track.rows.iterrows(), start=1):
        style = "dim italic" if row["kind"] == "reported" else ("bold" if on_front(row) else None)
        table.add_row(*(escape(column.text(row)) for column in COLUMNS), style=style, end_section=position == measured)
    return table


def _matched_table(track: Track) -> Table:
    headers, rows = matched_table(track.matched)
    table = Table(title=escape(f"{track.key.label} · matched operating points"), caption=escape(MATCHED), title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(escape(header), justify="right" if i else "left", overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def _failed_table(board: Leaderboard) -> Table:
    table = Table(title="failed runs (not ranked)", title_justify="left")
    for header in ("run", "method", "model", "data set", "seed", "reason"):
        table.add_column(header, overflow="fold")
    for row in board.failed.itertuples():
        table.add_row(*(escape(str(v)) for v in (row.run_id, row.method, row.model, row.dataset, row.seed, row.error)))
    return table


def _claims_table(board: Leaderboard) -> Table:
    table = Table(title="claims: each paper row's reproduction status", title_justify="left")
    for header in CLAIM_HEADERS:
        table.add_column(header, overflow="fold")
    for claim in board.claims():
        table.add_row(*(escape(cell) for cell in claim_cells(claim)))
    return table


def renderable(board: Leaderboard, matched: bool = False) -> Group:
    """Everything the terminal view shows, as one rich renderable; `matched`: each track's
    matched operating points under its table."""
    parts: list = [Text(f"leaderboard of {board.source}", style="bold")]
    for track in board.tracks:
        parts.append(_track_table(track))
        if matched and track.matched:
            parts.append(_matched_table(track))
    if not board.tracks:
        parts.append(Text("no finished runs to rank"))
    if not board.failed.empty:
        parts.append(_failed_table(board))
    if board.claims():
        parts.append(_claims_table(board))
    parts.append(Text("★ Pareto front of top-1 and compression · dim italic rows: reported by papers, not measured here", style="dim"))
    return Group(*parts)


def render(board: Leaderboard, color: bool = False, matched: bool = False) -> str:
    """The terminal view as text: with ANSI colours at the terminal's width when `color`,
    else plain and wide enough for every column (for files and pipes)."""
    width = shutil.get_terminal_size().columns if color else 240
    console = Console(file=io.StringIO(), width=width, force_terminal=color, color_system="standard" if color else None, highlight=False)
    console.print(renderable(board, matched))
    return console.file.getvalue()
