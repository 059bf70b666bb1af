"""Read result records into one pandas frame: from a directory of `result.json` files, or W&B.

The files are the source of truth and come from many machines and versions, so reading is
forgiving: a file that cannot be parsed or lacks required keys is reported (one line naming
it) and skipped; it never hides the other runs. Only when nothing readable is left is that
an error for the user.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.results import REQUIRED_KEYS, RESULT_FILE, STATUS_FINISHED

GRANULARITIES = ("unstructured", "structured", "none")
# Input geometry a data set's runs use when a record does not say (records older than `input_size`).
STANDARD_INPUT = {"imagenet": "3x224x224", "cifar10": "3x32x32", "cifar100": "3x32x32", "digits": "3x32x32", "mnist": "1x28x28"}
NUMERIC_FIELDS = (
    "top1", "top5", "density", "compression_rate", "macs", "macs_dense", "flops", "prunable_params",
    "prunable_nonzero", "epochs", "epochs_to_sparsity", "target_compression", "wall_seconds",
)  # fmt: skip
TEXT_FIELDS = ("run_id", "experiment", "config_hash", "method", "model", "dataset", "status")


class BadRecord(ValueError):
    """A record the leaderboard cannot use; the message says why, in a few words."""


def granularity_of(method: str, value: Any) -> str:
    """The track granularity of a run: as recorded, else 'none' for the dense reference and
    'unstructured' for anything else (the granularity of most methods)."""
    if value in GRANULARITIES:
        return value
    return "none" if method == "dense" else "unstructured"


def input_size_text(value: Any, dataset: str) -> str:
    """[3, 32, 32] -> '3x32x32'; absent -> the data set's standard input, or '?'."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "x".join(str(v) for v in value)
    return STANDARD_INPUT.get(dataset, "?")


def _number(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRecord(f"{key} is not a number")
    return float(value)


def normalize(record: Any, origin: str) -> dict[str, Any]:
    """One frame row from a raw record; raises BadRecord naming what is wrong."""
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, got {type(record).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise BadRecord(f"lacks required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for key in TEXT_FIELDS:
        if not isinstance(record[key], str) or not record[key]:
            raise BadRecord(f"{key} is not a non-empty string")
    if not isinstance(record["hparams"], dict):
        raise BadRecord("hparams is not an object")
    trail = record["trail"] if isinstance(record["trail"], list) else []
    config = record.get("config") if isinstance(record.get("config"), dict) else None
    phases = record.get("phases") if isinstance(record.get("phases"), dict) else None
    row = {key: record[key] for key in TEXT_FIELDS}
    row.update({key: _number(record, key) for key in NUMERIC_FIELDS})
    row.update(
        seed=record["seed"],
        hparams=record["hparams"],
        error=None if record["error"] is None else str(record["error"]),
        granularity=granularity_of(record["method"], record.get("granularity")),
        input_size=input_size_text(record.get("input_size"), record["dataset"]),
        phases=phases,
        config=config,
        trail=[entry for entry in trail if isinstance(entry, dict)],
        origin=origin,
    )
    return row


def _result_files(root: Path) -> Iterator[Path]:
    """Every result.json below `root`, in a stable order; symlinked directories are not followed."""
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        if RESULT_FILE in files:
            yield Path(directory) / RESULT_FILE


def _parse_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadRecord(f"not valid JSON (line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise BadRecord("not UTF-8 text") from None
    except OSError as exc:
        raise BadRecord(f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None


def _frame(records: Iterable[tuple[Any, str]], problems: list[str]) -> pd.DataFrame:
    """Normalize (record, origin) pairs; bad ones become problem lines. A run id read twice (a
    run mirrored to W&B, a results tree copied) counts once: the finished record if there is
    one (a rerun that succeeded supersedes the failed attempt), else the first read."""
    rows: dict[str, dict[str, Any]] = {}
    for record, origin in records:
        try:
            row = normalize(record, origin)
        except BadRecord as exc:
            problems.append(f"skipped {origin}: {exc}")
            continue
        kept = rows.setdefault(row["run_id"], row)
        if kept is row:
            continue
        if row["status"] == STATUS_FINISHED and kept["status"] != STATUS_FINISHED:
            rows[row["run_id"]] = row
            kept, row = row, kept  # the failed attempt is the one skipped
        problems.append(f"skipped {row['origin']}: run {row['run_id']} also in {kept['origin']}")
    return pd.DataFrame(list(rows.values()))


def _file_records(root: Path, problems: list[str]) -> Iterator[tuple[Any, str]]:
    """(record, path) for every result file under `root` (a directory, or one result file)."""
    if not root.exists():
        raise UserError(f"{root}: no such file or directory")
    files = [root] if root.is_file() else list(_result_files(root))
    if not files:
        raise UserError(f"{root}: holds no {RESULT_FILE} files")
    for path in files:
        try:
            yield _parse_file(path), str(path)
        except BadRecord as exc:
            problems.append(f"skipped {path}: {exc}")


def _wandb_records(project: str) -> list[tuple[Any, str]]:
    """(record, origin) for the finished runs of W&B project 'ENTITY/PROJECT', each record from
    the run's config and summary, where the mirror logs the result record's keys. Offline runs
    cannot be read this way (DESIGN.md)."""
    entity, _, name = project.partition("/")
    if not entity or not name or "/" in name:
        raise UserError(f"--wandb {project!r}: expected ENTITY/PROJECT")
    try:
        import wandb

        runs = wandb.Api(timeout=30).runs(project, filters={"state": STATUS_FINISHED})
        return [({**dict(run.config), **run.summary._json_dict}, f"wandb:{project}/{run.id}") for run in runs]
    except Exception as exc:  # network, authentication, unknown project: one line for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"--wandb {project}: cannot read runs ({exc.__class__.__name__}{': ' + reason if reason else ''})") from None


def load_runs(results: str | Path | None = None, wandb: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """All runs from a results directory (searched recursively) and/or a W&B project.
    Returns one frame row per run and one problem line per skipped record."""
    if results is None and wandb is None:
        raise UserError("give a results directory, --wandb ENTITY/PROJECT, or both")
    problems: list[str] = []
    sources: list[Iterable[tuple[Any, str]]] = []
    if results is not None:
        sources.append(list(_file_records(Path(results), problems)))
    if wandb is not None:
        sources.append(_wandb_records(wandb))
    frame = _frame((item for source in sources for item in source), problems)
    if frame.empty:
        where = results if results is not None else f"W&B project {wandb}"
        raise UserError(f"{where}: no readable result records ({len(problems)} skipped)")
    return frame, problems
