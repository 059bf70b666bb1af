"""Read result records into one pandas frame: from a directory of `result.json` files, or W&B.

The files are the source of truth and come from many machines and versions, so reading is
forgiving: a file that cannot be parsed or lacks required keys is reported (one line naming
it) and skipped; it never hides the other runs. Only when nothing readable is left is that
an error for the user (which still lists what was skipped).

Anyone can write a result file, so reading is also guarded: only small regular files, JSON
within limits (core.storage.read_result_file), and every string of a record made printable
(core.text) as it is read, before any view sees it: no escape sequence or newline of a record reaches a
terminal, whatever the format.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from prunebench.core.errors import UserError, error_line, first_line, first_problem
from prunebench.core.identity import configuration_hash
from prunebench.core.record import METRICS, STATUS_FINISHED, Latency, ResultRecord
from prunebench.core.record_checks import inconsistency
from prunebench.core.storage import RESULT_FILE, Storage, UnreadableResult, check_json, is_uri, probe_remote, read_result_file
from prunebench.core.text import printable, printable_strings
from prunebench.leaderboard.cost import device_seconds, with_costs

# Input geometry a data set's runs use when a record does not say (records older than `input_size`).
STANDARD_INPUT = {"imagenet": "3x224x224", "cifar10": "3x32x32", "cifar100": "3x32x32", "digits": "3x32x32", "mnist": "1x28x28"}
NUMERIC_FIELDS = (*METRICS, "target_compression")
TEXT_FIELDS = ("run_id", "experiment", "config_hash", "method", "model", "dataset", "status")


class BadRecord(ValueError):
    """A record the leaderboard cannot use; the message says why, in a few words."""


class NoReadableRecords(UserError):
    """Every record was skipped; `problems` says which and why, one line each."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def granularity_of(method: str, value: Any) -> str:
    """The track granularity of a run: as recorded, else 'none' for the dense reference and
    'unstructured' for anything else (the granularity of most methods)."""
    if value is not None:
        return value
    return "none" if method == "dense" else "unstructured"


def input_size_text(value: list[int] | None, dataset: str) -> str:
    """[3, 32, 32] -> '3x32x32'; absent -> the data set's standard input, or '?'."""
    if value:
        return "x".join(str(v) for v in value)
    return STANDARD_INPUT.get(dataset, "?")


def describe_problem(exc: ValidationError) -> str:
    """The first schema violation in a few words: the field and what is wrong."""
    first = exc.errors()[0]
    field, message = first_problem(exc)
    field = field or "record"
    kind = first["type"]
    if kind == "missing":
        missing = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] == "missing"]
        return f"lacks required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    if kind.startswith(("float_", "int_")) and kind.endswith(("_type", "_parsing")):
        return f"{field} is not a number"
    if kind == "dict_type":
        return f"{field} is not an object"
    if kind in ("string_type", "string_too_short"):
        return f"{field} is not a non-empty string"
    return f"{field}: {message.lower()}"


def configuration_of(record: ResultRecord) -> str:
    """The seedless identity of a run (core.identity): as recorded, else computed from the
    config it carries (version 1), else from its method, model, data and hyper-parameters."""
    if record.configuration:
        return record.configuration
    if record.config is not None:
        return configuration_hash(record.config)
    return configuration_hash({"method": record.method, "model": record.model, "dataset": record.dataset,
                               "input_size": record.input_size, "granularity": record.granularity, "hparams": record.hparams,
                               "phases": record.phases, "epochs": record.epochs, "target_compression": record.target_compression})  # fmt: skip


def speed_fields(latency: Latency | None) -> dict[str, Any]:
    """The measured speed a row shows: the speedup at the throughput batch (the largest measured)
    and at batch 1, with `speed_on`, what they are comparable across: the device, its threads
    and the throughput batch. Missing (nan, None) for records without latency."""
    if latency is None:
        return {"speed_on": None, "speedup": math.nan, "speedup_b1": math.nan, "latency_ms": math.nan, "dense_latency_ms": math.nan}
    batch = max(latency.batch_sizes)
    return {
        "speed_on": f"{latency.speed_device} · batch {batch}",
        "speedup": latency.speedup[batch],
        "speedup_b1": latency.speedup.get(1, math.nan),
        "latency_ms": latency.ms[batch],
        "dense_latency_ms": latency.dense_ms[batch],
    }


def final_validation(record: ResultRecord) -> float:
    """The validation top-1 of the run's last epoch (nan without one): what selects a setting,
    never the test split."""
    last = record.trail[-1].val_top1 if record.trail else None
    return math.nan if last is None else float(last)


def normalize(raw: Any, origin: str) -> dict[str, Any]:
    """One frame row from a raw record (already within check_json's limits, its strings made
    printable as it was read), validated against the record schema; raises BadRecord naming
    what is wrong."""
    if not isinstance(raw, dict):
        raise BadRecord(f"expected a JSON object, got {type(raw).__name__}")
    try:
        record = ResultRecord.model_validate(raw)
    except ValidationError as exc:
        raise BadRecord(describe_problem(exc)) from None
    contradiction = inconsistency(record)
    if contradiction:
        raise BadRecord(contradiction)
    row = {key: getattr(record, key) for key in TEXT_FIELDS}
    row.update({key: math.nan if getattr(record, key) is None else float(getattr(record, key)) for key in NUMERIC_FIELDS})
    row.update(
        seed=record.seed,
        hparams=record.hparams,
        error=record.error,
        configuration=configuration_of(record),
        granularity=granularity_of(record.method, record.granularity),
        input_size=input_size_text(record.input_size, record.dataset),
        phases=record.phases,
        config=record.config,
        val_top1=final_validation(record),
        device_seconds=device_seconds(record.wall_seconds, record.environment),
        **record.model_dump(include={"trail", "layers", "histograms"}),  # one call: entries as plain dicts
        origin=printable(origin),
        **speed_fields(record.latency),
    )
    return row


def skipped(origin: str, reason: object) -> str:
    """The problem line of a skipped record: one printable line naming it and why."""
    return printable(f"skipped {origin}: {reason}")


def _result_files(root: Path) -> Iterator[Path]:
    """Every result.json below `root`, in a stable order; symlinked directories are not followed."""
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        if RESULT_FILE in files:
            yield Path(directory) / RESULT_FILE


def _parse_file(path: Path) -> Any:
    try:
        return read_result_file(path, make_printable=True)
    except UnreadableResult as exc:
        raise BadRecord(str(exc)) from None
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
            problems.append(skipped(origin, exc))
            continue
        kept = rows.setdefault(row["run_id"], row)
        if kept is row:
            continue
        if row["status"] == STATUS_FINISHED and kept["status"] != STATUS_FINISHED:
            rows[row["run_id"]] = row
            kept, row = row, kept  # the failed attempt is the one skipped
        problems.append(skipped(row["origin"], f"run {row['run_id']} also in {kept['origin']}"))
    return pd.DataFrame(list(rows.values()))


def _remote_records(uri: str, problems: list[str]) -> Iterator[tuple[Any, str]]:
    """(record, URI) for every result file under a storage URI (s3://BUCKET/PREFIX), which must
    answer within the remote storage's time bound first."""
    probe_remote(uri)
    storage = Storage(uri)
    try:
        files = storage.result_files()
    except OSError as exc:
        raise UserError(f"{uri}: cannot list ({first_line(exc, exc.__class__.__name__)})") from None
    if not files:
        raise UserError(f"{uri}: holds no {RESULT_FILE} files")
    for path in files:
        origin = storage.uri(posixpath.relpath(path, storage.fs_root))
        try:
            yield storage.read_result_at(path, make_printable=True), origin
        except UnreadableResult as exc:
            problems.append(skipped(origin, exc))
        except OSError as exc:
            problems.append(skipped(origin, f"cannot be read ({first_line(exc, exc.__class__.__name__)})"))


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
            problems.append(skipped(str(path), exc))


def _wandb_records(project: str, problems: list[str]) -> list[tuple[Any, str]]:
    """(record, origin) for the finished runs of W&B project 'ENTITY/PROJECT', each record from
    the run's config and summary, where the mirror logs the result record's keys. Offline runs
    cannot be read this way (DESIGN.md)."""
    entity, _, name = project.partition("/")
    if not entity or not name or "/" in name:
        raise UserError(f"--wandb {project!r}: expected ENTITY/PROJECT")
    try:
        import wandb

        runs = wandb.Api(timeout=30).runs(project, filters={"state": STATUS_FINISHED})
        records = [({**dict(run.config), **run.summary._json_dict}, f"wandb:{project}/{run.id}") for run in runs]
    except Exception as exc:  # network, authentication, unknown project: one line for the user
        raise UserError(f"--wandb {project}: cannot read runs ({error_line(exc)})") from None
    within_limits = []
    for record, origin in records:  # files are checked as they are parsed; these are checked here
        try:
            check_json(record)
            within_limits.append((printable_strings(record), origin))
        except UnreadableResult as exc:
            problems.append(skipped(origin, exc))
    return within_limits


def load_runs(results: str | Path | None = None, wandb: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """All runs from a results directory or storage URI (searched recursively) and/or a W&B
    project. Returns one frame row per run and one problem line per skipped record."""
    if results is None and wandb is None:
        raise UserError("give a results directory, --wandb ENTITY/PROJECT, or both")
    problems: list[str] = []
    sources: list[Iterable[tuple[Any, str]]] = []
    if results is not None:
        records = _remote_records(str(results), problems) if is_uri(str(results)) else _file_records(Path(results), problems)
        sources.append(list(records))
    if wandb is not None:
        sources.append(_wandb_records(wandb, problems))
    frame = _frame((item for source in sources for item in source), problems)
    if frame.empty:
        where = results if results is not None else f"W&B project {wandb}"
        raise NoReadableRecords(f"{where}: no readable result records ({len(problems)} skipped)", problems)
    return with_costs(frame), problems
