"""Did a method reproduce its paper? One status per paper row, by a rule stated in advance.

A paper row is judged only against runs of the same method in its track that ran the row's
protocol: the same seedless configuration as its protocol config (core.identity), except for the
settings that choose the operating point (the method's hyper-parameters and target), which a
sweep varies. At the row's operating point (compression, or MACs reduction for structured rows,
in the count the paper prints: matched.at_operating_point) the runs' top-1 change against their
own dense runs (of the row's dense protocol) must be no worse than the paper's change against its
own baseline, less a tolerance of max(2 standard errors over the seeds, 0.3 points on MNIST and
CIFAR, 0.5 on ImageNet). Rows of other papers' methods, and dense rows, get no status.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from prunebench.core.identity import identity
from prunebench.leaderboard.interval import standard_error
from prunebench.leaderboard.matched import SweepPoint, at_operating_point
from prunebench.leaderboard.reported import paper_axis

REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_RUN = "reproduced", "not_reproduced", "not_comparable", "not_run"
STATUSES = (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE, NOT_RUN)
FLOOR = {"imagenet": 0.005}  # the smallest tolerance, as a fraction: 0.5 points on ImageNet
DEFAULT_FLOOR = 0.003  # 0.3 points on MNIST and CIFAR
SWEPT = ("method.hparams", "target_compression")  # what a sweep varies: the operating point, not the protocol


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        return {key: value for name, child in node.items() for key, value in _flat(child, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): node}


def _text(value: Any) -> str:
    return "—" if value is _ABSENT else json.dumps(value, sort_keys=True, default=str)


_ABSENT = object()


def departures(config: dict[str, Any] | None, protocol: dict[str, Any]) -> list[str]:
    """'key: protocol -> run' for every key of the seedless identity where a run's config differs
    from its protocol's, the swept settings left out; one line when the record carries no config."""
    if not isinstance(config, dict):
        return ["config: the record carries none (written before configs were recorded)"]
    run, wanted = _flat(identity(config, with_seed=False)), _flat(protocol["identity"])
    keys = sorted(key for key in run.keys() | wanted.keys() if not key.startswith(SWEPT))
    return [f"{key}: {_text(wanted.get(key, _ABSENT))} -> {_text(run.get(key, _ABSENT))}" for key in keys
            if run.get(key, _ABSENT) != wanted.get(key, _ABSENT)]  # fmt: skip


def declared(protocol: dict[str, Any]) -> list[str]:
    """The protocol config's own departures from its paper, as it declares them."""
    return [f"declared: {entry['key']}: {entry['reason']}" for entry in protocol.get("departures", [])]


def _result(status: str, **fields: Any) -> dict[str, Any]:
    base = {"status": status, "gap_top1": None, "gap_top5": None, "tolerance": None, "at_compression": None, "run_ids": [],
            "departures": [], "reason": None}  # fmt: skip
    return {**base, **fields}


def _closest(rows: list[dict[str, Any]], protocol: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows that ran the protocol, and else the departures of the nearest one."""
    found = [(row, departures(row.get("config"), protocol)) for row in rows]
    comparable = [row for row, differences in found if not differences]
    return comparable, ([] if comparable or not found else min((d for _, d in found), key=len))


def verdict(paper: dict[str, Any], measured: list[dict[str, Any]], protocols: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The reproduction status of one paper row against the measured rows of its track (plain
    dicts of seed-aggregated rows); None for rows no status applies to."""
    if paper["granularity"] == "none":
        return None
    runs = [row for row in measured if row["method"] == paper["method"] and row["granularity"] != "none"]
    if not paper["protocol"]:
        if not runs:
            return None
        return _result(NOT_COMPARABLE, departures=["protocol: prunebench ships no config for this row's protocol"])
    protocol, dense_protocol = protocols[paper["protocol"]], protocols.get(paper["dense_protocol"])
    notes = declared(protocol)
    if not runs:
        return _result(NOT_RUN, departures=notes, reason=f"no {paper['method']} run in this track")
    comparable, differences = _closest(runs, protocol)
    if not comparable:
        return _result(NOT_COMPARABLE, departures=differences + notes, run_ids=[i for row in runs for i in row["run_ids"]])
    dense = [row for row in measured if row["granularity"] == "none"]
    references, dense_differences = _closest(dense, dense_protocol) if dense_protocol else ([], [])
    if not references:
        why = [f"dense: {d}" for d in dense_differences] or [f"dense: no dense run of {paper['dense_protocol'] or 'its protocol'} in this track"]
        return _result(NOT_COMPARABLE, departures=why + notes, run_ids=[i for row in comparable for i in row["run_ids"]])
    return _judged(paper, comparable, references[0], notes)


def _judged(paper: dict[str, Any], runs: list[dict[str, Any]], dense: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Status at the operating point, on top-1 where the paper gives its change, else top-5."""
    metric = "top1" if pd.notna(paper["top1_change"]) else "top5"
    column, x = paper_axis(paper)
    points = [SweepPoint(x=row[column], y=row[metric] - dense[metric], se=standard_error(row[f"{metric}_std"], row[f"{metric}_n"]),
                         n=int(row[f"{metric}_n"]), run_ids=tuple(row["run_ids"])) for row in runs]  # fmt: skip
    at = at_operating_point(points, x)
    if at is None:
        reached = ", ".join(f"{p.x:.3g}×" for p in sorted(points, key=lambda p: p.x) if math.isfinite(p.x))
        return _result(NOT_RUN, departures=notes, reason=f"no run at the paper's {x:.3g}× (within 5 % or inside the sweep): runs at {reached}",
                       run_ids=[i for p in points for i in p.run_ids])  # fmt: skip
    tolerance = max(2 * at.se if math.isfinite(at.se) else 0.0, FLOOR.get(paper["dataset"], DEFAULT_FLOOR))
    gap = at.y - paper[f"{metric}_change"]
    return _result(REPRODUCED if gap >= -tolerance else NOT_REPRODUCED, **{f"gap_{metric}": gap}, tolerance=tolerance,
                   at_compression=at.x, run_ids=list(at.run_ids) + list(dense["run_ids"]), departures=notes,
                   reason="interpolated over log-compression between two settings" if at.interpolated else None)  # fmt: skip
