"""The leaderboard as Markdown, for READMEs, issues and papers' appendices.

Markdown renderers pass raw HTML through, so strings from results are HTML-escaped, and pipes
and brackets escaped: a run name can neither break the table nor inject markup, a link or an image.
"""

from __future__ import annotations

import html
import re

from prunebench.leaderboard.board import Leaderboard
from prunebench.leaderboard.views.columns import CLAIM_HEADERS, COLUMNS, FRONT, MATCHED, RULE, claim_cells, matched_table, reference_line


# Pipes end a cell; brackets make `[x](url)` a link and `![](url)` an image: all shown escaped.
_LINK_SYNTAX = re.compile(r"[|\[\]]")


def cell(text: object) -> str:
    return _LINK_SYNTAX.sub(r"\\\g<0>", html.escape(" ".join(str(text).split())))


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render(board: Leaderboard) -> str:
    lines = [f"# Leaderboard of {cell(board.source)}", ""]
    right = {i for i, column in enumerate(COLUMNS) if column.numeric}
    for track in board.tracks:
        lines += [f"## {cell(track.key.label)}", "", cell(reference_line(track.rows, track.reference)), ""]
        rows = [[column.text(row) for column in COLUMNS] for _, row in track.rows.iterrows()]
        lines += _table([c.header for c in COLUMNS], rows, right) + [""]
        if track.matched:
            headers, matched = matched_table(track.matched)
            lines += ["### Matched operating points", "", cell(MATCHED), ""] + _table(headers, matched, set(range(1, len(headers)))) + [""]
    if not board.tracks:
        lines += ["No finished runs to rank.", ""]
    if not board.failed.empty:
        failed = [[r.run_id, r.method, r.model, r.dataset, r.seed, r.error] for r in board.failed.itertuples()]
        lines += ["## Failed runs (not ranked)", ""] + _table(["run", "method", "model", "data set", "seed", "reason"], failed, set()) + [""]
    if board.claims():
        lines += ["## Claims", "", cell(RULE), ""] + _table(list(CLAIM_HEADERS), [claim_cells(c) for c in board.claims()], set()) + [""]
    lines.append(f"★ {FRONT}. Rows whose source is a paper's table are reported there, not measured here.")
    return "\n".join(lines) + "\n"
