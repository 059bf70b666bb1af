"""The numbers the papers report (`reported.csv`), as leaderboard rows kept apart from measured ones.

A paper's row is a claim made under that paper's protocol (its baseline, epochs, FLOP counter),
so it is shown in its track marked as reported and never averaged with measured runs; where a
track has both, each measured row shows its gap to the paper's nearest comparable row.

`reported.csv` is transcribed from the paper texts, one row per table cell group, with the
paper's own quantities and units (blank = the table does not give it):

- source, table: paper (LTP, DT, PSP, OT) and its table; label: the row as the table names it
- dataset, model, granularity: the track; input_size: blank where the text does not state it
  (the data set's standard input is assumed, `store.STANDARD_INPUT`)
- method: the registry name where the row is one of ours (ltp, dt, psp, ns, ot, global,
  dense), else the paper's name for it
- baseline: label of the uncompressed row of the same table the row is compared with
- top1, top5: accuracy in %; top1_error, top5_error: error in % (PSP reports errors)
- top1_drop, top5_drop: accuracy loss against the paper's baseline in percentage points,
  + = worse (DT's "acc. loss", LTP's "Δ", PSP's "error gap")
- compression_rate: the paper's compression factor (PSP: of all parameters);
  macs_reduction: its FLOPs/MACs reduction factor
- params, macs, flops: counts with the paper's K/M/G suffix (PSP counts all parameters). Each
  count goes in the column its meaning says: `macs` for multiply-accumulates, whatever the paper
  calls them (OT's "GFLOPs" are MACs: VGG-16-BN's 14.59 G is 15.47 G by our counter; PSP heads
  its columns MACs); `flops` only for a paper whose FLOPs are 2 x MACs (none so far). A blank
  `flops` is filled as 2 x `macs`, as for measured rows. LTP and DT give no counts.
- epochs, epochs_to_sparsity: as the text states them; note: anything else a reader needs
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from prunebench.leaderboard.store import STANDARD_INPUT

REPORTED_CSV = Path(__file__).with_name("reported.csv")
_SUFFIX = {"K": 1e3, "M": 1e6, "G": 1e9}
GAP_COLUMNS = ("reported_ref", "gap_top1", "gap_top5", "gap_top1_change", "gap_top5_change")


def _count(text: object) -> float:
    """'0.21M' -> 210000.0; blank -> nan."""
    if not isinstance(text, str) or not text.strip():
        return math.nan
    text = text.strip()
    scale = _SUFFIX.get(text[-1].upper(), 1.0)
    return float(text[:-1] if text[-1].upper() in _SUFFIX else text) * scale


def _accuracy(accuracy: pd.Series, error: pd.Series) -> pd.Series:
    """Fraction correct from accuracy % where given, else from error %."""
    return accuracy.fillna(100.0 - error) / 100.0


def reported_as_printed(path: Path = REPORTED_CSV) -> pd.DataFrame:
    """reported.csv as written: every cell a string, as the paper prints it."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def load_reported(path: Path = REPORTED_CSV) -> pd.DataFrame:
    """The reported rows in the leaderboard's row schema (fractions, counts, factors), with
    each row's top-1/top-5 change against the baseline row of its own table."""
    raw = reported_as_printed(path)
    numbers = raw[["top1", "top5", "top1_error", "top5_error", "top1_drop", "top5_drop", "compression_rate",
                   "macs_reduction", "epochs", "epochs_to_sparsity"]].apply(pd.to_numeric)  # fmt: skip
    rows = pd.DataFrame(
        {
            "kind": "reported",
            "source": raw["source"] + " " + raw["table"],
            "dataset": raw["dataset"],
            "model": raw["model"],
            "input_size": [size or STANDARD_INPUT.get(dataset, "?") for size, dataset in zip(raw["input_size"], raw["dataset"])],
            "granularity": raw["granularity"],
            "method": raw["method"],
            "label": raw["label"],
            "key_hparams": raw["hparams"],
            "note": raw["note"],
            "top1": _accuracy(numbers["top1"], numbers["top1_error"]),
            "top5": _accuracy(numbers["top5"], numbers["top5_error"]),
            "params": raw["params"].map(_count),
            "macs": raw["macs"].map(_count),
            "flops": raw["flops"].map(_count),
            "compression_rate": numbers["compression_rate"],
            "macs_reduction": numbers["macs_reduction"],
            "epochs": numbers["epochs"],
            "epochs_to_sparsity": numbers["epochs_to_sparsity"],
        }
    )
    rows["flops"] = rows["flops"].fillna(2 * rows["macs"])
    dense = rows["granularity"] == "none"
    rows.loc[dense, "compression_rate"] = rows["compression_rate"].fillna(1.0)
    rows.loc[dense, "macs_reduction"] = rows["macs_reduction"].fillna(1.0)
    baseline = _baseline_rows(raw, rows)
    rows["top1_change"] = (0.0 - numbers["top1_drop"] / 100.0).fillna(rows["top1"] - baseline["top1"])  # 0.0 -: no "-0"
    rows["top5_change"] = (0.0 - numbers["top5_drop"] / 100.0).fillna(rows["top5"] - baseline["top5"])
    rows["compression_rate"] = rows["compression_rate"].fillna(baseline["params"] / rows["params"])
    rows["macs_reduction"] = rows["macs_reduction"].fillna(baseline["macs"] / rows["macs"]).fillna(baseline["flops"] / rows["flops"])
    rows["density"] = 1.0 / rows["compression_rate"]
    return rows


def _baseline_rows(raw: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """For each row, the values of its baseline row (same paper, table, data set and model);
    all-nan where it names none."""
    scope = ["source", "table", "dataset", "model"]
    keys = raw[scope + ["label"]].copy()
    values = rows[["top1", "top5", "params", "macs", "flops"]]
    baselines = pd.concat([keys, values], axis=1).drop_duplicates(subset=scope + ["label"])
    wanted = raw[scope].assign(label=raw["baseline"])
    return wanted.merge(baselines, on=scope + ["label"], how="left")[list(values.columns)]


def _distance(measured: dict, reported: dict) -> tuple[float, float]:
    """How far a reported row is from a measured one: log-ratio of compression (or of MACs
    reduction when the paper gives no compression), then difference in epochs."""
    for column in ("compression_rate", "macs_reduction"):
        if measured[column] > 0 and reported[column] > 0:
            rate = abs(math.log(measured[column] / reported[column]))
            break
    else:
        rate = math.inf
    epochs = abs(measured["epochs"] - reported["epochs"])
    return rate, math.inf if math.isnan(epochs) else epochs


def reported_gaps(measured: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """For each measured row, the same method's nearest reported row in the track and the gaps
    measured minus reported: absolute top-1/top-5 where the paper gives them, and the change
    against each side's own dense baseline (comparable even when baselines differ)."""
    candidates: dict[str, list[dict]] = {}
    for paper_row in reported.to_dict("records"):  # plain dicts: pandas rows cost milliseconds a row
        candidates.setdefault(paper_row["method"], []).append(paper_row)
    columns: dict[str, list] = {column: [] for column in GAP_COLUMNS}
    for row in measured.to_dict("records"):
        ranked = candidates.get(row["method"], [])
        best = min(ranked, key=lambda paper_row: _distance(row, paper_row), default=None)  # the first of a tie
        rate = f" @ {best['compression_rate']:.3g}×" if best is not None and best["compression_rate"] > 0 else ""
        columns["reported_ref"].append(f"{best['source']}{rate}" if best is not None else math.nan)
        for metric in ("top1", "top5", "top1_change", "top5_change"):
            columns[f"gap_{metric}"].append(row[metric] - best[metric] if best is not None else math.nan)
    gaps = pd.DataFrame(columns, index=measured.index)
    gaps["reported_ref"] = gaps["reported_ref"].astype(object)
    for column in GAP_COLUMNS[1:]:
        gaps[column] = pd.to_numeric(gaps[column])
    return gaps
