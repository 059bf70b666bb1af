"""Assemble the leaderboard: runs -> seed aggregates -> tracks with references, ranks, paper rows.

Everything the views show is decided here, once, so that the terminal table, markdown, CSV,
JSON and HTML page never disagree about an order, a reference or a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from prunebench.core.errors import UserError
from prunebench.core.record import STATUS_FINISHED
from prunebench.core.text import printable
from prunebench.leaderboard.hparams import all_hparams, key_hparams
from prunebench.leaderboard.options import REPORTED_MODES
from prunebench.leaderboard.margins import margins
from prunebench.leaderboard.matched import matched_points
from prunebench.leaderboard.ranking import check_sort, rank
from prunebench.leaderboard.reported import load_protocols, load_reported, reported_gaps
from prunebench.leaderboard.seeds import aggregate_seeds
from prunebench.leaderboard.selection import chosen_settings
from prunebench.leaderboard.store import load_runs
from prunebench.leaderboard.tracks import TrackKey, dense_reference, rows_of, track_keys, with_changes
from prunebench.leaderboard.verdict import verdict

# Which paper rows to show: only in tracks with measured runs, in every track they have, or none.
FAILED_COLUMNS = ["run_id", "experiment", "method", "model", "dataset", "seed", "error", "origin"]


@dataclass
class Track:
    key: TrackKey
    rows: pd.DataFrame  # measured rows in rank order, then the papers' rows (kind 'reported') in table order
    reference: pd.Series | None  # the dense configuration the changes are measured against
    matched: list[dict] = field(default_factory=list)  # each method's top-1 at ShrinkBench's ratios (matched.matched_points)


@dataclass
class Leaderboard:
    source: str
    sort: str | None
    tracks: list[Track]
    failed: pd.DataFrame  # runs that did not finish: listed with their reason, never ranked
    problems: list[str] = field(default_factory=list)  # records that were skipped, one line each

    def claims(self) -> list[dict]:
        """Every paper row shown that has a reproduction status, in track order: the claims summary."""
        return [
            {"paper": row["table_source"], "method": row["method"], "label": row["label"], "model": track.key.model,
             "dataset": track.key.dataset, **row["reproduction"]}
            for track in self.tracks for _, row in track.rows.iterrows() if isinstance(row.get("reproduction"), dict)
        ]  # fmt: skip


def _failed(runs: pd.DataFrame) -> pd.DataFrame:
    failed = runs[runs["status"] != STATUS_FINISHED].copy()
    failed["error"] = [
        error if isinstance(error, str) and error else f"status {status!r}" for error, status in zip(failed["error"], failed["status"])
    ]
    return failed[FAILED_COLUMNS].reset_index(drop=True)


def _track(key: TrackKey, measured: pd.DataFrame, reported: pd.DataFrame, sort: str | None, protocols: dict) -> Track:
    rows, papers, reference = rows_of(measured, key), rows_of(reported, key), None
    if not rows.empty:
        reference = dense_reference(rows)
        rows = with_changes(rows, reference).assign(kind="measured", source="measured", label="", note="")
        rows = rank(rows.assign(key_hparams=key_hparams(rows), all_hparams=all_hparams(rows)), sort)
        rows = rows.assign(chosen=chosen_settings(rows))
        rows = rows.join(pd.DataFrame(margins(rows.to_dict("records"), key.granularity), index=rows.index))
        if not papers.empty:
            rows = rows.join(reported_gaps(rows, papers, protocols))
    runs = rows.to_dict("records") if not rows.empty else []  # plain dicts: pandas rows cost milliseconds a row
    if not papers.empty:
        papers = papers.assign(reproduction=[verdict(paper, runs, protocols) for paper in papers.to_dict("records")])
    combined = pd.concat([frame for frame in (rows, papers) if not frame.empty], ignore_index=True)
    counts = [c for c in combined.columns if c in ("rank", "n") or c.endswith("_n")]
    combined[counts] = combined[counts].astype("Int64")  # counts stay integers next to papers' blanks
    return Track(key=key, rows=combined, reference=reference, matched=matched_points(runs, key.granularity == "structured"))


def build_leaderboard(
    results: str | Path | None = None, sort: str | None = None, wandb: str | None = None, reported: str = "matched"
) -> Leaderboard:
    """Read the runs under `results` (and/or W&B project `wandb`) and rank them per track.
    `sort`: an options.SORT_KEYS name, or None for Pareto front first. `reported`: which paper
    rows to show (REPORTED_MODES). Bad input raises UserError."""
    check_sort(sort)
    if reported not in REPORTED_MODES:
        raise UserError(f"--reported {reported!r}: expected one of {' | '.join(REPORTED_MODES)}")
    runs, problems = load_runs(results, wandb)
    measured = aggregate_seeds(runs[runs["status"] == STATUS_FINISHED])
    papers = load_reported() if reported != "none" else pd.DataFrame()
    keys = track_keys(measured, papers if reported == "all" else pd.DataFrame())
    protocols = load_protocols() if reported != "none" else {}
    tracks = [_track(key, measured, papers, sort, protocols) for key in keys]
    source = printable(" + ".join(str(part) for part in (results, wandb and f"wandb:{wandb}") if part))
    return Leaderboard(source=source, sort=sort, tracks=tracks, failed=_failed(runs), problems=problems)
