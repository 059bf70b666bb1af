"""Run one config in this process: the run directory, per-epoch checkpoints, the result file.

Nothing is written before the config, data and model have been checked, so bad input leaves
no run directory behind. A run that breaks while training is recorded as failed.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from harness.config import RunConfig
from harness.errors import RunFailed, UserError
from harness.results import write_result
from harness.tracking import start_tracking
from harness.train import EpochCallback, Trainer, Worker, execute, failed_record

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"


def save_torch_atomic(payload: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalCheckpoints:
    """Checkpoint file in the run directory; loaded as weights only (data, never code)."""

    def __init__(self, run_dir: Path, worker: Worker = Worker()) -> None:
        self.path = run_dir / CHECKPOINT_FILE
        self.worker = worker

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"{self.path}: cannot resume from this checkpoint ({exc.__class__.__name__}); delete it to start over") from None

    def save(self, state: dict[str, Any], metrics: dict[str, Any]) -> None:
        if self.worker.is_chief:
            save_torch_atomic(state, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def run_local(config: RunConfig, resume: bool = False, callbacks: list[EpochCallback] | None = None) -> tuple[dict[str, Any], Path]:
    """Train `config` here and write OUTPUT/EXPERIMENT/RUN_ID/result.json.
    Returns the record and the run directory. Raises UserError for bad input (nothing written)."""
    run_dir = config.run_dir()
    checkpoints = LocalCheckpoints(run_dir)
    if not resume:
        checkpoints.clear()
    trainer = Trainer(config, Worker(), checkpoints, list(callbacks or []))  # bad input stops here: nothing written
    tracker = start_tracking(config, run_dir)
    if tracker:
        trainer.callbacks.append(tracker.log_epoch)
    try:
        record, model = execute(trainer)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a bug or a broken environment: keep the reason, never rank it
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.log").write_text(traceback.format_exc())
        record = failed_record(config, f"{exc.__class__.__name__}: {exc}".splitlines()[0])
        write_result(run_dir, record)
        if tracker:
            tracker.finish(record)
        raise RunFailed(f"{config.run_id()}: {record['error']} (traceback in {run_dir / 'error.log'})") from None
    write_run_files(run_dir, config, record, model)
    if tracker:
        tracker.finish(record)
    checkpoints.clear()
    return record, run_dir


def write_run_files(run_dir: Path, config: RunConfig, record: dict[str, Any], model: nn.Module | None) -> None:
    """config.yaml, model.pt (when there is a model), then result.json: its presence marks the run as done.
    Shared with the Ray workers of `prunebench submit` (cluster/worker.py)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    if model is not None:
        save_torch_atomic({k: v.detach().cpu() for k, v in model.state_dict().items()}, run_dir / MODEL_FILE)
    write_result(run_dir, record)
