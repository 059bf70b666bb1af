"""The result record: one `result.json` per run, written atomically by rank 0.

It is the source of truth for the leaderboard; W&B is a mirror. A reader never sees a
half-written file: records are written to a temporary file in the same directory, flushed
to disk and renamed over the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"

REQUIRED_KEYS = (
    "run_id", "experiment", "config_hash", "method", "model", "dataset", "seed", "hparams",
    "status", "error", "epochs", "top1", "top5", "prunable_params", "prunable_nonzero",
    "density", "compression_rate", "macs", "macs_dense", "flops", "target_compression",
    "epochs_to_sparsity", "trail", "wall_seconds", "environment",
)  # fmt: skip
# Also written (not required of older records): granularity ("unstructured" | "structured" |
# "none"), input_size (e.g. [3, 32, 32]), phases ({phase: epochs}), params / params_dense
# (all parameters), flops_dense, config (the whole validated run config).

STATUS_FINISHED, STATUS_FAILED = "finished", "failed"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that `path` holds either the old content or the complete new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, sort_keys=True, allow_nan=False)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_result(run_dir: Path, record: dict[str, Any]) -> Path:
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise ValueError(f"result record lacks {', '.join(missing)}")
    path = Path(run_dir) / RESULT_FILE
    write_json_atomic(path, record)
    return path


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """The run's record, or None when there is none (or it cannot be parsed)."""
    path = Path(run_dir) / RESULT_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_finished(run_dir: Path) -> bool:
    record = read_result(run_dir)
    return record is not None and record.get("status") == STATUS_FINISHED
