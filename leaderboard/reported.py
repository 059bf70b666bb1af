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
- params, macs, flops: counts with the paper's K/M/G suffix, or Gi for 1024^3 (OT's Table IV;
  PSP counts all parameters). Each
  count goes in the column its meaning says: `macs` for multiply-accumulates, whatever the paper
  calls them (OT's "GFLOPs" are MACs: VGG-16-BN's 14.59 G is 15.47 G by our counter; PSP heads
  its columns MACs); `flops` only for a paper whose FLOPs are 2 x MACs (none so far). A blank
  `flops` is filled as 2 x `macs`, as for measured rows. LTP and DT give no counts.
- epochs, epochs_to_sparsity: as the text states them; note: anything else a reader needs
- protocol: the config that is the row's protocol, 'PATH [KEY=VALUE ...]' (`--set` overrides),
  blank where prunebench ships none (other papers' methods, models not shipped: NOT_SHIPPED);
  its seedless identity is in protocols.json (`make protocols`)
- compression_counts: what the row's compression counts, `prunable` (Conv/Linear weights) or
  `all` (every parameter: PSP); a measured row is compared in the same count
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from prunebench.leaderboard.matched import SweepPoint, at_operating_point
from prunebench.leaderboard.store import STANDARD_INPUT

REPORTED_CSV = Path(__file__).with_name("reported.csv")
PROTOCOLS_JSON = Path(__file__).with_name("protocols.json")
_SUFFIX = {"Gi": 1024.0**3, "K": 1e3, "M": 1e6, "G": 1e9}  # the two-letter suffix first
# Models the papers' tables use that prunebench does not ship: their rows join no measured track.
NOT_SHIPPED = frozenset({"caffenet", "nasnet_b", "nasnet_a", "mobilenet_v2_1.4", "densenet_c63", "densenet_c87"})
COMPRESSION_COUNTS = {"prunable": "compression_rate", "all": "compression_all"}  # what a row counts -> the measured column
GAP_COLUMNS = ("reported_ref", "gap_top1", "gap_top5", "gap_top1_change", "gap_top5_change")


def _count(text: object) -> float:
    """'0.21M' -> 210000.0; blank -> nan."""
    if not isinstance(text, str) or not text.strip():
        return math.nan
    text = text.strip()
    suffix = next((suffix for suffix in _SUFFIX if text.endswith(suffix)), "")
    return float(text[: len(text) - len(suffix)]) * _SUFFIX.get(suffix, 1.0)


def _accuracy(accuracy: pd.Series, error: pd.Series) -> pd.Series:
    """Fraction correct from accuracy % where given, else from error %."""
    return accuracy.fillna(100.0 - error) / 100.0


def reported_as_printed(path: Path = REPORTED_CSV) -> pd.DataFrame:
    """reported.csv as written: every cell a string, as the paper prints it."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def dense_protocols(raw: pd.DataFrame) -> pd.Series:
    """Each row's dense protocol, against which its measured side's change is taken: its baseline
    row's protocol, else (a table without a dense row, DT's) its own with the method's config
    replaced by the model's dense one (configs are named MODEL-METHOD.yaml)."""
    scope = ["source", "table", "dataset", "model"]
    baselines = raw[scope + ["label", "protocol"]].drop_duplicates(subset=scope + ["label"])
    named = raw[scope].assign(label=raw["baseline"]).merge(baselines, on=scope + ["label"], how="left")["protocol"].fillna("")
    sibling = [protocol.replace(f"-{method}.yaml", "-dense.yaml", 1) if protocol and method != "dense" else protocol
               for protocol, method in zip(raw["protocol"], raw["method"])]  # fmt: skip
    return pd.Series([baseline if row_baseline else own for own, baseline, row_baseline in zip(sibling, named, raw["baseline"])],
                     index=raw.index)  # fmt: skip


def protocols_named(path: Path = REPORTED_CSV) -> list[str]:
    """Every protocol the rows name or imply (dense_protocols), once each, in file order."""
    raw = reported_as_printed(path)
    return list(dict.fromkeys(protocol for protocol in [*raw["protocol"], *dense_protocols(raw)] if protocol))


def load_protocols(path: Path = PROTOCOLS_JSON) -> dict[str, dict[str, Any]]:
    """Protocol -> {configuration, identity, departures}, as `make protocols` wrote them."""
    return json.loads(path.read_text(encoding="utf-8"))


def row_problems(raw: pd.DataFrame, protocols: dict[str, Any]) -> list[str]:
    """One line per inconsistent row of reported.csv as printed (its line number and label)."""
    problems = []
    numbers = raw[["top1", "top5", "top1_error", "top5_error", "compression_rate", "macs_reduction"]].apply(pd.to_numeric, errors="coerce")
    for line, (index, row) in enumerate(raw.iterrows(), start=2):
        where = f"reported.csv line {line} ({row['source']} {row['table']}: {row['label']})"
        if row["protocol"] and row["protocol"] not in protocols:
            problems.append(f"{where}: protocol {row['protocol']!r} is not in protocols.json (a config that does not exist?)")
        if row["compression_counts"] not in COMPRESSION_COUNTS:
            problems.append(f"{where}: compression_counts {row['compression_counts']!r}: expected prunable or all")
        accuracy = numbers.loc[index, ["top1", "top5", "top1_error", "top5_error"]]
        if ((accuracy < 0) | (accuracy > 100)).any():
            problems.append(f"{where}: an accuracy or error outside [0, 100] %")
        factors = numbers.loc[index, ["compression_rate", "macs_reduction"]]
        if (factors < 1).any():
            problems.append(f"{where}: a compression or MACs reduction below 1")
    return problems


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
            "protocol": raw["protocol"],
            "dense_protocol": dense_protocols(raw),
            "compression_counts": raw["compression_counts"],
            "baseline": raw["baseline"],
            "table_source": raw["source"] + " " + raw["table"],
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


def paper_axis(paper: dict[str, Any]) -> tuple[str, float]:
    """(measured column, the paper's value) of a row's operating point: MACs reduction for a
    structured row that gives one, else compression in the count the paper prints."""
    if paper["granularity"] == "structured" and paper["macs_reduction"] > 0:
        return "macs_reduction", paper["macs_reduction"]
    return COMPRESSION_COUNTS.get(paper["compression_counts"], "compression_rate"), paper["compression_rate"]


def _pruned_gap(row: dict[str, Any], tables: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """The first table whose rows of the row's method meet it (matched.at_operating_point over the
    paper's rows, in the paper's count): the gaps of Δ top-1 / top-5, each against its own dense."""
    for (source, _), papers in tables.items():
        column, _ = paper_axis(papers[0])
        x = row.get(column, math.nan)
        found = {metric: at_operating_point([SweepPoint(x=paper_axis(p)[1], y=p[f"{metric}_change"]) for p in papers], x)
                 for metric in ("top1", "top5")}  # fmt: skip
        if any(found.values()):
            at = next(at for at in found.values() if at is not None)
            how = " (interpolated)" if at.interpolated else ""
            return {"reported_ref": f"{source} @ {at.x:.3g}×{how}",
                    **{f"gap_{m}_change": row[f"{m}_change"] - at.y if at else math.nan for m, at in found.items()}}  # fmt: skip
    return {}


def _dense_gap(row: dict[str, Any], papers: list[dict[str, Any]], protocols: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A dense run against the paper's dense row of the same protocol (never by file order)."""
    for paper in papers:
        protocol = protocols.get(paper["protocol"])
        if protocol is not None and protocol["configuration"] == row["configuration"]:
            return {"reported_ref": f"{paper['source']}: {paper['label']}", "gap_top1": row["top1"] - paper["top1"],
                    "gap_top5": row["top5"] - paper["top5"]}  # fmt: skip
    return {}


def reported_gaps(measured: pd.DataFrame, reported: pd.DataFrame, protocols: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """For each measured row, the gap to the paper's rows of the same method in the track that
    meet it: a pruned row in Δ top-1 / top-5 (each side against its own dense baseline) at its
    operating point, within 5 % of a paper's row or inside the paper's sweep; a dense row in
    top-1 / top-5 against the paper's dense row of its protocol. Blank where none meets it."""
    tables: dict[str, dict[tuple[str, str], list[dict]]] = {}
    for paper in reported.to_dict("records"):  # plain dicts: pandas rows cost milliseconds a row
        tables.setdefault(paper["method"], {}).setdefault((paper["source"], paper["compression_counts"]), []).append(paper)
    dense = [paper for paper in reported.to_dict("records") if paper["granularity"] == "none"]
    gaps = []
    for row in measured.to_dict("records"):
        if row["granularity"] == "none":
            gaps.append(_dense_gap(row, dense, protocols))
        else:
            gaps.append(_pruned_gap(row, tables.get(row["method"], {})))
    frame = pd.DataFrame(gaps, index=measured.index, columns=list(GAP_COLUMNS))
    frame["reported_ref"] = frame["reported_ref"].astype(object)
    for column in GAP_COLUMNS[1:]:
        frame[column] = pd.to_numeric(frame[column])
    return frame
