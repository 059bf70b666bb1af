"""The leaderboard's columns and how each cell reads, shared by the terminal, markdown and HTML
views so that they show the same numbers in the same units.

Cells return plain, unescaped text; each view escapes for its own medium.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def count(value: Any) -> str:
    """40550000 -> '40.55M'."""
    if missing(value):
        return ""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.0f}"


def percent(value: Any, std: Any = None) -> str:
    """0.9012 -> '90.12', with '± s' when a spread is known."""
    if missing(value):
        return ""
    return f"{100 * value:.2f}" + ("" if missing(std) else f" ± {100 * std:.2f}")


def points(value: Any) -> str:
    """A change of accuracy in percentage points, signed."""
    return "" if missing(value) else f"{100 * value:+.2f}"


def factor(value: Any) -> str:
    return "" if missing(value) else f"{value:.2f}×"


def number(value: Any) -> str:
    if missing(value):
        return ""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


GAPS = (("gap_top1", "top-1"), ("gap_top1_change", "Δtop-1"), ("gap_top5", "top-5"), ("gap_top5_change", "Δtop-5"))


def gap(row: pd.Series) -> str:
    """Measured minus the paper's nearest row, on the first quantity both report."""
    for column, name in GAPS:
        if not missing(row.get(column)):
            return f"{points(row[column])} {name} vs {row['reported_ref']}"
    return ""


def on_front(row: pd.Series) -> bool:
    value = row.get("pareto")
    return not missing(value) and bool(value)


def speedup(row: pd.Series) -> str:
    """'1.49× (b1 1.34×)': measured at the throughput batch, and at batch 1 where it was."""
    if missing(row.get("speedup")):
        return ""
    return factor(row["speedup"]) + ("" if missing(row.get("speedup_b1")) else f" (b1 {factor(row['speedup_b1'])})")


def speed_order(row: pd.Series) -> str | None:
    """What the speedup column sorts by: the device first, then the speedup, so that sorting never
    puts rows timed on different devices in one order of speed."""
    if missing(row.get("speedup")) or missing(row.get("speed_on")):
        return None
    return f"{row['speed_on']} {row['speedup']:012.4f}"


def source(row: pd.Series) -> str:
    if row["kind"] != "reported":
        return "measured"
    return f"{row['source']}: {row['label']}" if row["label"] != row["method"] else row["source"]


@dataclass(frozen=True)
class Column:
    header: str
    title: str  # what the column means, for tooltips and legends
    text: Callable[[pd.Series], str]
    value: Callable[[pd.Series], Any]  # what the column sorts by (a number, or text)
    numeric: bool = True


def _get(name: str) -> Callable[[pd.Series], Any]:
    return lambda row: None if missing(row.get(name)) else row.get(name)


COLUMNS = (
    Column("#", "rank in the track (measured rows only)", lambda r: number(r.get("rank")), _get("rank")),
    Column("front", "★ = on the Pareto front of top-1 and compression rate", lambda r: "★" if on_front(r) else "",
           lambda r: int(on_front(r))),
    Column("method", "pruning method", lambda r: str(r["method"]), _get("method"), numeric=False),
    Column("settings", "hyper-parameters whose values differ between the method's rows in this track (none when it has one row)",
           lambda r: str(r.get("key_hparams") or ""), _get("key_hparams"), numeric=False),
    Column("hyper-parameters", "every setting of the row: the method's hyper-parameters, target and epochs per phase",
           lambda r: str(r.get("all_hparams") or ""), _get("all_hparams"), numeric=False),
    Column("source", "measured here, or reported by a paper (table, row)", source, source, numeric=False),
    Column("compression", "compression rate = dense prunable weights / nonzero", lambda r: factor(r["compression_rate"]), _get("compression_rate")),
    Column("density", "nonzero / dense prunable weights", lambda r: "" if missing(r["density"]) else f"{r['density']:.4f}", _get("density")),
    Column("MACs", "multiply-accumulates per input, nonzero weights and live channels only", lambda r: count(r["macs"]), _get("macs")),
    Column("FLOPs", "2 x MACs (papers' counts are filed as MACs where they are multiply-accumulates)", lambda r: count(r["flops"]), _get("flops")),
    Column("MACs ↓", "MACs reduction against dense", lambda r: factor(r["macs_reduction"]), _get("macs_reduction")),
    Column("speedup", "measured inference speedup against the dense architecture (dense ms / pruned ms, median of paired repeats) "
           "at the throughput batch, batch 1 in brackets; comparable only between rows measured on the same device", speedup, speed_order,
           numeric=False),
    Column("measured on", "device, CPU threads and throughput batch of the speed measurement", lambda r: "" if missing(r.get("speed_on")) else str(r["speed_on"]),
           _get("speed_on"), numeric=False),
    Column("top-1 %", "test top-1 accuracy, mean ± sample std over seeds", lambda r: percent(r["top1"], r.get("top1_std")), _get("top1")),
    Column("Δ top-1", "top-1 change against the dense reference, percentage points", lambda r: points(r["top1_change"]), _get("top1_change")),
    Column("top-5 %", "test top-5 accuracy, mean ± sample std over seeds", lambda r: percent(r["top5"], r.get("top5_std")), _get("top5")),
    Column("Δ top-5", "top-5 change against the dense reference, percentage points", lambda r: points(r["top5_change"]), _get("top5_change")),
    Column("vs paper", "measured minus the paper's nearest row of the same method, percentage points", gap,
           lambda r: next((r[c] for c, _ in GAPS if not missing(r.get(c))), None)),
    Column("epochs→sparsity", "epochs until the target compression was first reached", lambda r: number(r["epochs_to_sparsity"]),
           _get("epochs_to_sparsity")),
    Column("epochs", "total training epochs, all phases", lambda r: number(r["epochs"]), _get("epochs")),
    Column("seeds", "runs aggregated in the row", lambda r: number(r.get("n")), _get("n")),
)  # fmt: skip


def reference_line(rows: pd.DataFrame, reference: pd.Series | None) -> str:
    """One line naming a track's dense reference, or saying why there is none."""
    if not (rows["kind"] == "measured").any():
        return "no runs measured in this track: papers' rows only"
    if reference is None:
        return "no dense run in this track: changes against dense are not shown"
    return (
        f"dense reference: top-1 {percent(reference['top1'], reference.get('top1_std'))} %, "
        f"{number(reference['n'])} seed(s), {count(reference['macs'])} MACs"
    )


# The terminal's default table, in reading order: what the row is, what it costs, what it keeps.
# On a narrow terminal the columns in GIVE_WAY leave first, in that order; method and top-1 stay.
COMPACT = ("#", "front", "method", "settings", "compression", "MACs ↓", "top-1 %", "Δ top-1", "speedup", "seeds")
GIVE_WAY = ("speedup", "seeds", "#", "Δ top-1", "MACs ↓", "front", "settings", "compression")
# The page's first columns: what a reader looks for; the others follow in COLUMNS order.
PAGE_LEAD = ("front", "method", "settings", "compression", "MACs ↓", "top-1 %", "Δ top-1")


def columns_named(headers: tuple[str, ...]) -> tuple[Column, ...]:
    """The columns of `headers`, in that order."""
    by_header = {column.header: column for column in COLUMNS}
    return tuple(by_header[header] for header in headers)


def page_order() -> tuple[Column, ...]:
    """Every column, the page's leading ones first."""
    return columns_named(PAGE_LEAD) + tuple(column for column in COLUMNS if column.header not in PAGE_LEAD)
