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


def percent(value: Any) -> str:
    """0.9012 -> '90.12'."""
    return "" if missing(value) else f"{100 * value:.2f}"


def with_interval(value: Any, ci: Any = None, n: Any = None) -> str:
    """A seed mean in percent with half its 95 % t-interval and n: '90.12 ± 0.40 (n 3)'; no ±
    for one seed, no n for a paper's row (which has none)."""
    if missing(value):
        return ""
    interval = "" if missing(ci) else f" ± {100 * ci:.2f}"
    return f"{100 * value:.2f}{interval}" + ("" if missing(n) else f" (n {n:.0f})")


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


def reproduction(row: pd.Series) -> str:
    """A paper row's status: 'reproduced -0.12 (tol 0.30)', 'not_comparable: phases.prune.epochs: 300 -> 8'."""
    verdict = row.get("reproduction")
    if not isinstance(verdict, dict):
        return ""
    return claim_status(verdict)


def claim_status(verdict: dict) -> str:
    """The status with its gap and tolerance, or with what made it not comparable / not run."""
    gap = next((verdict[k] for k in ("gap_top1", "gap_top5") if verdict.get(k) is not None), None)
    if gap is not None:
        metric = "top-1" if verdict.get("gap_top1") is not None else "top-5"
        return f"{verdict['status']} {points(gap)} Δ{metric} (tol {100 * verdict['tolerance']:.2f})"
    departures = [d for d in verdict.get("departures") or [] if not d.startswith("declared:")]
    why = verdict.get("reason") or "; ".join(departures[:3]) + (f"; +{len(departures) - 3} more" if len(departures) > 3 else "")
    return f"{verdict['status']}: {why}" if why else verdict["status"]


CLAIM_HEADERS = ("paper", "method", "row", "model", "data set", "status")


def claim_cells(claim: dict) -> list[str]:
    """One line of the claims summary: which paper row, and its status."""
    return [str(claim["paper"]), str(claim["method"]), str(claim["label"]), str(claim["model"]), str(claim["dataset"]), claim_status(claim)]


def matched_text(entry: dict) -> str:
    """'93.21 ± 0.40 (n 3)': top-1 at a ratio with the half-width of its 95 % t-interval; '~' when interpolated."""
    interval = "" if missing(entry["ci95"]) else f" ± {100 * entry['ci95']:.2f}"
    return f"{'~' if entry['interpolated'] else ''}{100 * entry['top1']:.2f}{interval} (n {entry['n']})"


def matched_table(matched: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Headers and one row per method of a track's matched operating points (blank where its
    sweep does not reach a ratio)."""
    ratios = sorted({entry["ratio"] for entry in matched})
    axis = "MACs ↓" if matched and matched[0]["axis"] == "macs_reduction" else "compression"
    headers = ["method"] + [f"{axis} {ratio:g}×" for ratio in ratios]
    by_method: dict[str, dict[float, str]] = {}
    for entry in matched:
        by_method.setdefault(entry["method"], {})[entry["ratio"]] = matched_text(entry)
    return headers, [[method] + [cells.get(ratio, "") for ratio in ratios] for method, cells in by_method.items()]


MATCHED = ("Matched operating points: each method's test top-1 % at ShrinkBench's ratios (MACs reduction on structured tracks), "
           "mean ± half the 95 % t-interval over the seeds (n); a setting within 5 % of a ratio counts as at it, '~' marks a value "
           "interpolated over log-compression between the two nearest settings; blank where the sweep does not reach the ratio.")  # fmt: skip


FRONT = ("on the Pareto front of top-1 and compression rate within the track: off it only when another row at least as "
         "compressed has a top-1 higher by more than both rows' 95 % intervals, or a more compressed one a top-1 no lower than that")


RULE = ("A paper row is reproduced when runs of its method, in its track and with its protocol (the seedless configuration of "
        "its protocol config, the swept hyper-parameters and target aside), at its operating point (compression, or MACs "
        "reduction for structured rows, within 5 % or inside the sweep, interpolated over log-compression), lose no more top-1 "
        "against their own dense runs than the paper's row against its own baseline, within max(2 standard errors over the "
        "seeds, 0.3 points MNIST/CIFAR, 0.5 ImageNet).")  # fmt: skip


def _flag(row: pd.Series, name: str) -> bool:
    """A row's yes/no column; papers' rows have none (blank after the concat), which is no."""
    value = row.get(name)
    return not missing(value) and bool(value)


def chosen(row: pd.Series) -> bool:
    return _flag(row, "chosen")


def on_front(row: pd.Series) -> bool:
    return _flag(row, "pareto")


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
    Column("front", f"★ = {FRONT}", lambda r: "★" if on_front(r) else "",
           lambda r: int(on_front(r))),
    Column("chosen", "✓ = the method's setting chosen on validation: the highest final validation top-1 (last epoch, mean over "
           "seeds) of its settings in this track, reported by its test top-1; the test split never chooses",
           lambda r: "✓" if chosen(r) else "", lambda r: int(chosen(r))),
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
    Column("val top-1 %", "validation top-1 of the last epoch, mean over seeds: what chooses a method's setting",
           lambda r: percent(r.get("val_top1")), _get("val_top1")),
    Column("top-1 %", "test top-1 accuracy, mean ± half the 95 % t-interval over the seeds (n)",
           lambda r: with_interval(r["top1"], r.get("top1_ci95"), r.get("top1_n")), _get("top1")),
    Column("Δ top-1", "top-1 change against the dense reference, percentage points", lambda r: points(r["top1_change"]), _get("top1_change")),
    Column("top-5 %", "test top-5 accuracy, mean ± half the 95 % t-interval over the seeds (n)",
           lambda r: with_interval(r["top5"], r.get("top5_ci95"), r.get("top5_n")), _get("top5")),
    Column("Δ top-5", "top-5 change against the dense reference, percentage points", lambda r: points(r["top5_change"]), _get("top5_change")),
    Column("vs paper", "measured rows: minus the paper's row of the same method at the same operating point (within 5 % or inside "
           "the paper's sweep), in Δ against each side's own dense; dense runs against the paper's dense row of their protocol. "
           f"Paper rows: their reproduction status. {RULE}", lambda r: reproduction(r) if r["kind"] == "reported" else gap(r),
           lambda r: reproduction(r) if r["kind"] == "reported" else next((r[c] for c, _ in GAPS if not missing(r.get(c))), None),
           numeric=False),
    Column("vs random", "top-1 minus the random baseline's (random unstructured, random_channels structured) at the row's operating "
           "point (compression; MACs reduction on a structured track), within 5 % or interpolated inside the baseline's sweep "
           "(as the matched points); blank where the track has no random baseline there", lambda r: points(r.get("vs_random")),
           _get("vs_random")),
    Column("vs scratch", "structured rows: top-1 minus their own pruned architecture trained from scratch (the model.from_architecture "
           "runs of the row's runs, mean); blank without one", lambda r: points(r.get("vs_scratch")), _get("vs_scratch")),
    Column("epochs→sparsity", "epochs until the target compression was first reached", lambda r: number(r["epochs_to_sparsity"]),
           _get("epochs_to_sparsity")),
    Column("epochs", "total training epochs, all phases", lambda r: number(r["epochs"]), _get("epochs")),
    Column("total epochs", "training epochs of the run, the shared dense stage it starts from counted (mean over seeds)",
           lambda r: number(r.get("total_epochs")), _get("total_epochs")),
    Column("device-s", "device-seconds: one device a DDP worker (its world size) × wall seconds; the shared dense stage's added "
           "when its record is read (mean over seeds)", lambda r: count(r.get("device_seconds")),
           _get("device_seconds")),
    Column("seeds", "runs aggregated in the row", lambda r: number(r.get("n")), _get("n")),
)  # fmt: skip


def reference_line(rows: pd.DataFrame, reference: pd.Series | None) -> str:
    """One line naming a track's dense reference, or saying why there is none."""
    if not (rows["kind"] == "measured").any():
        return "no runs measured in this track: papers' rows only"
    if reference is None:
        return "no dense run in this track: changes against dense are not shown"
    return (
        f"dense reference: top-1 {with_interval(reference['top1'], reference.get('top1_ci95'))} %, "
        f"{number(reference['n'])} seed(s), {count(reference['macs'])} MACs"
    )


# The terminal's default table, in reading order: what the row is, what it costs, what it keeps.
# On a narrow terminal the columns in GIVE_WAY leave first, in that order; method and top-1 stay.
COMPACT = ("#", "front", "chosen", "method", "settings", "compression", "MACs ↓", "top-1 %", "Δ top-1", "vs random", "speedup", "total epochs", "device-s", "seeds", "vs paper")
GIVE_WAY = ("total epochs", "device-s", "speedup", "seeds", "chosen", "#", "vs paper", "vs random", "Δ top-1", "MACs ↓", "front", "settings", "compression")
# The page's first columns: what a reader looks for; the others follow in COLUMNS order.
PAGE_LEAD = ("front", "chosen", "method", "settings", "compression", "MACs ↓", "top-1 %", "Δ top-1")


def columns_named(headers: tuple[str, ...]) -> tuple[Column, ...]:
    """The columns of `headers`, in that order."""
    by_header = {column.header: column for column in COLUMNS}
    return tuple(by_header[header] for header in headers)


def page_order() -> tuple[Column, ...]:
    """Every column, the page's leading ones first."""
    return columns_named(PAGE_LEAD) + tuple(column for column in COLUMNS if column.header not in PAGE_LEAD)
