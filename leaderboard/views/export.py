"""The leaderboard as data: CSV (one flat table) and JSON (tracks with their rows), for
spreadsheets, plots and other programs. Numbers stay in their stored units (fractions, counts)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from prunebench.leaderboard.board import FAILED_COLUMNS, Leaderboard
from prunebench.leaderboard.seeds import AVERAGED, INTERVALS, SPEED

_IDENTITY = ["kind", "rank", "pareto", "chosen", "method", "granularity", "key_hparams", "hparams", "source", "label", "n", "seeds", "run_ids"]
_SPEED = ["speed_on", *SPEED, "speedup_n"]
_DERIVED = ["top1_change", "top5_change", "macs_reduction", "vs_random", "vs_scratch", "reported_ref", "gap_top1", "gap_top5", "gap_top1_change", "gap_top5_change", "note",
            "protocol", "compression_counts", "reproduction"]  # fmt: skip
ROW_COLUMNS = _IDENTITY + [f"{m}{suffix}" for m in AVERAGED for suffix in ("", "_std", "_n")] + [f"{m}_ci95" for m in INTERVALS] + _SPEED + _DERIVED
TRACK_COLUMNS = ["track", "dataset", "model", "input_size", "track_granularity"]

FORMULA_STARTS = frozenset("=+-@\t\r")  # what makes a spreadsheet read a cell as a formula


def plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars to Python, nan and infinities to None, containers recursively."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):  # a fully pruned model: MACs reduction 1/0
        return None
    if value is pd.NA:
        return None
    return value


def _rows(board: Leaderboard) -> list[dict[str, Any]]:
    rows = []
    for track in board.tracks:
        context = dict(zip(TRACK_COLUMNS, (track.key.label, *track.key)))
        for _, row in track.rows.iterrows():
            rows.append({**context, **{column: plain(row.get(column)) for column in ROW_COLUMNS}})
    return rows


def render_json(board: Leaderboard) -> str:
    tracks = []
    for track in board.tracks:
        rows = [{column: plain(row.get(column)) for column in ROW_COLUMNS} for _, row in track.rows.iterrows()]
        reference = None if track.reference is None else {"run_ids": plain(track.reference["run_ids"]), "top1": plain(track.reference["top1"]),
                                                          "top5": plain(track.reference["top5"]), "n": plain(track.reference["n"])}  # fmt: skip
        tracks.append({**dict(zip(TRACK_COLUMNS, (track.key.label, *track.key))), "reference": reference, "rows": rows,
                       "matched": plain(track.matched)})  # fmt: skip
    document = {
        "source": board.source,
        "sort": board.sort,
        "tracks": tracks,
        "claims": [plain(claim) for claim in board.claims()],
        "failed": [plain(record) for record in board.failed.to_dict("records")],
        "skipped": board.problems,
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def render_csv(board: Leaderboard) -> str:
    """Ranked and reported rows, then failed runs (kind 'failed', with their error)."""
    rows = _rows(board)
    rows += [{"kind": "failed", **{k: plain(v) for k, v in record.items()}} for record in board.failed.to_dict("records")]
    columns = TRACK_COLUMNS + ROW_COLUMNS
    frame = pd.DataFrame(rows, columns=columns + [c for c in FAILED_COLUMNS if c not in columns])
    for column in ("hparams", "seeds", "run_ids", "reproduction"):
        frame[column] = frame[column].map(lambda v: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
    return frame.map(inert_cell).to_csv(index=False, float_format="%.10g")


def inert_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab, carriage return first)
    gets a leading apostrophe, as OWASP recommends; numbers stay numbers."""
    return f"'{value}" if isinstance(value, str) and value[:1] in FORMULA_STARTS else value
