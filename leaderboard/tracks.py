"""Tracks: the groups of rows that may be compared with each other, and their dense reference.

Accuracy and cost only mean something against the same data set, model, input size and
pruning granularity: a structured method pays in accuracy for real speed that an unstructured
one does not deliver, and a 224-pixel ResNet-50 is a different problem from a 160-pixel one.
The dense runs of a data set/model/input size are the reference of both of its granularities.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

DENSE = "none"  # the granularity of the dense reference


class TrackKey(NamedTuple):
    dataset: str
    model: str
    input_size: str
    granularity: str

    @property
    def label(self) -> str:
        kind = "dense runs only" if self.granularity == DENSE else self.granularity
        return f"{self.dataset} · {self.model} · {self.input_size} · {kind}"


_BASE = ["dataset", "model", "input_size"]


def track_keys(*frames: pd.DataFrame) -> list[TrackKey]:
    """Every track that rows of `frames` belong to, sorted. A data set/model/input size with
    only dense rows gets one 'none' track, so that its runs are still listed."""
    keys: set[TrackKey] = set()
    dense_only: set[tuple[str, str, str]] = set()
    for frame in frames:
        if frame.empty:
            continue
        for row in frame[_BASE + ["granularity"]].drop_duplicates().itertuples(index=False):
            if row.granularity == DENSE:
                dense_only.add((row.dataset, row.model, row.input_size))
            else:
                keys.add(TrackKey(*row))
    pruned_bases = {key[:3] for key in keys}
    keys |= {TrackKey(*base, DENSE) for base in dense_only - pruned_bases}
    return sorted(keys)


def rows_of(frame: pd.DataFrame, key: TrackKey) -> pd.DataFrame:
    """The rows of `frame` in track `key`: its granularity's rows and the dense references."""
    if frame.empty:
        return frame
    same_base = (frame["dataset"] == key.dataset) & (frame["model"] == key.model) & (frame["input_size"] == key.input_size)
    return frame[same_base & frame["granularity"].isin({key.granularity, DENSE})]


def dense_reference(rows: pd.DataFrame) -> pd.Series | None:
    """The track's reference: of its dense configurations, the most accurate one (a strong
    baseline keeps every other row's change honest). None when the track has no dense run."""
    dense = rows[(rows["granularity"] == DENSE) & rows["top1"].notna()]
    if dense.empty:
        return None
    return dense.loc[dense["top1"].idxmax()]


def with_changes(rows: pd.DataFrame, reference: pd.Series | None) -> pd.DataFrame:
    """Add top-1/top-5 change against the dense reference (nan without one) and the MACs
    reduction against the same model's dense MACs (as each run recorded them)."""
    rows = rows.copy()
    for metric in ("top1", "top5"):
        rows[f"{metric}_change"] = rows[metric] - (reference[metric] if reference is not None else float("nan"))
    rows["macs_reduction"] = rows["macs_dense"] / rows["macs"]
    return rows
