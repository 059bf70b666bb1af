"""The "key hyper-parameters" of a row: what tells it apart from the same method's other rows.

A method has many hyper-parameters, most left at their defaults; listing all of them on every
row buries the one that was swept. Within a track, a method's key hyper-parameters are those
whose values differ between its rows; a method with a single row has none (every setting of a
run is in its record and in the JSON view's `hparams`).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from prunebench.core.phases import PHASES


def format_value(value: Any) -> str:
    """1e-05 rather than 0.00001, no trailing '.0', JSON for containers."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _settings(row: pd.Series) -> dict[str, str]:
    settings = {name: format_value(value) for name, value in sorted(row["hparams"].items())}
    if pd.notna(row["target_compression"]):
        settings["target"] = f"{row['target_compression']:g}x"
    if isinstance(row["phases"], dict):
        settings["phases"] = "+".join(f"{row['phases'].get(p, 0)}" for p in PHASES)
    return settings


def key_hparams(rows: pd.DataFrame) -> pd.Series:
    """'name=value ...' per row of one track: the settings that vary within the row's method."""
    settings = rows.apply(_settings, axis=1)
    text = pd.Series("", index=rows.index, dtype=object)
    for _, group in rows.groupby("method", sort=False):
        names = sorted({name for index in group.index for name in settings[index]})
        varying = [n for n in names if len({settings[i].get(n) for i in group.index}) > 1]
        for index in group.index:
            text[index] = " ".join(f"{n}={settings[index][n]}" for n in varying if n in settings[index])
    return text


def all_hparams(rows: pd.DataFrame) -> pd.Series:
    """'name=value ...' per row: every setting of the row (the wide table's and the page's)."""
    return rows.apply(lambda row: " ".join(f"{n}={v}" for n, v in _settings(row).items()), axis=1).astype(object)
