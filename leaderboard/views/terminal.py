"""The leaderboard as terminal tables (rich): one table per track, failed runs apart.

The default table has the columns a reader looks for (columns.COMPACT) and fits the terminal's
width: where they do not fit, the columns of columns.GIVE_WAY leave one by one, so that method
and top-1 are always readable rather than every column folded to a few characters. `wide`
shows every column at its natural width (for files and wide screens).

Run names, hyper-parameters and errors come from result files anyone can write, so every such
string is escaped before rich reads it as markup.
"""

from __future__ import annotations

import io
import shutil

from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from prunebench.leaderboard.board import Leaderboard, Track
from prunebench.leaderboard.views.columns import (CLAIM_HEADERS, COLUMNS, COMPACT, GIVE_WAY, MATCHED, Column, claim_cells, columns_named,
                                                    matched_table, on_front, reference_line)

WIDE = 10_000  # characters: no line of a wide table is folded
FALLBACK_WIDTH = 120  # a pipe or file without COLUMNS set


def _track_table(track: Track, columns: tuple[Column, ...], width: int) -> Table:
    caption = escape(reference_line(track.rows, track.reference))
    table = Table(title=escape(track.key.label), caption=caption, title_justify="left", caption_justify="left", expand=False)
    for column in columns:
        wraps = column.header == "settings"  # the one free-text column folds; numbers never do
        table.add_column(escape(column.header), justify="right" if column.numeric else "left", overflow="fold" if wraps else "ellipsis",
                         no_wrap=not wraps, max_width=max(16, width // 4) if wraps else None)  # fmt: skip
    measured = int((track.rows["kind"] == "measured").sum())
    for position, row in enumerate(track.rows.to_dict("records"), start=1):
        style = "dim italic" if row["kind"] == "reported" else ("bold" if on_front(row) else None)
        table.add_row(*(escape(column.text(row)) for column in columns), style=style, end_section=position == measured)
    return table


def _fitted_table(track: Track, console: Console) -> Table:
    """The compact table with as many of its columns as fit the console's width unfolded; a
    column with nothing to show in this track (no setting varies, nothing timed) is left out."""
    columns = [column for column in columns_named(COMPACT) if any(column.text(row) for row in track.rows.to_dict("records"))]
    unbounded = console.options.update(max_width=WIDE)
    while True:
        table = _track_table(track, tuple(columns), console.width)
        leaving = next((column for header in GIVE_WAY for column in columns if column.header == header), None)
        if leaving is None or Measurement.get(console, unbounded, table).maximum <= console.width:
            return table
        columns.remove(leaving)


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


def renderable(board: Leaderboard, console: Console, wide: bool = False, matched: bool = False) -> Group:
    """Everything the terminal view shows, as one rich renderable for `console`; `matched`: each
    track's matched operating points under its table."""
    parts: list = [Text(f"leaderboard of {board.source}", style="bold")]
    for track in board.tracks:
        parts.append(_track_table(track, COLUMNS, WIDE) if wide else _fitted_table(track, console))
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


def render(board: Leaderboard, color: bool = False, wide: bool = False, matched: bool = False) -> str:
    """The terminal view as text, ANSI-coloured when `color`: fitted to the terminal's width
    (COLUMNS, else the terminal, else FALLBACK_WIDTH), or every column at full width when `wide`."""
    width = WIDE if wide else shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns
    console = Console(file=io.StringIO(), width=width, force_terminal=color, color_system="standard" if color else None, highlight=False)
    console.print(renderable(board, console, wide, matched))
    return "\n".join(line.rstrip() for line in console.file.getvalue().split("\n"))
