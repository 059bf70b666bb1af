"""The one run lifecycle, for `prunebench run` and for every Ray Train worker alike.

1. Set up (data, model, method, the checkpoint to resume from, checked fully against the
   model: bad input raises UserError here, before anything is written).
2. Write config.yaml: the run directory is known to be writable before any training.
3. Train with per-epoch checkpoints and the W&B mirror (rank 0); what the run prints is kept in
   its train.log (harness.runlog), set-up's output included.
4. End with exactly one result.json: finished (with model.pt), or failed with its reason, its
   trail and environment; a crash also leaves error.log with the traceback.
5. Clear the checkpoint of a finished run; a failed run keeps it, so a retry resumes from it.

Only rank 0 writes. Other ranks let unexpected errors propagate, so that Ray tears the worker
group down instead of leaving rank 0 waiting in a collective.
"""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any

import torch
import yaml
from pydantic import ValidationError

from prunebench.core.device import Worker
from prunebench.core.errors import RunFailed, UserError, error_line, first_problem
from prunebench.core.metrics import prunable_modules
from prunebench.core.record import STATUS_FAILED, ResultRecord
from prunebench.core.storage import CHECKPOINT_FILE, CONFIG_FILE, ERROR_FILE, MODEL_FILE, RunDir
from prunebench.harness import runlog
from prunebench.harness.checkpoints import Checkpoints, RunShape
from prunebench.harness.config import PHASES, RunConfig
from prunebench.harness.results import environment, failed_record, finished_record
from prunebench.harness.step import evaluate
from prunebench.harness.tracking import start_tracking, wandb_mode
from prunebench.harness.train import EpochCallback, Trainer


def stage_model(config: RunConfig) -> dict[str, torch.Tensor] | None:
    """The final weights of the run's dense stage, found by its run id in the run's storage."""
    stage = config.model.dense_stage
    if stage is None:
        return None
    run = config.run_files().storage.run(config.experiment, stage.run_id)
    state = run.load_torch(MODEL_FILE)
    if state is None:
        raise UserError(f"model.dense_stage: {stage.run_id} has no {MODEL_FILE} under {run.uri} (has the stage finished?)")
    return state


def record_failure(run: RunDir, config: RunConfig, reason: str) -> ResultRecord:
    """A failed record for a run that could not finish (Ray gave up on it), with the trail of
    its last checkpoint when one can be read."""
    try:
        saved = Checkpoints(run).load()
    except UserError:
        saved = None
    record = failed_record_of(config, reason, saved.trail if saved else [], saved.elapsed if saved else 0.0)
    run.write_record(record)
    return record


def failed_record_of(config: RunConfig, reason: str, trail: list[dict[str, Any]], wall_seconds: float,
                     env: dict[str, Any] | None = None) -> ResultRecord:  # fmt: skip
    """The failed record, whatever state the run left: a trail or timing the schema refuses is
    left out (and said), so the writer of the failed record cannot itself fail."""
    try:
        return failed_record(config, reason, trail, wall_seconds, env)
    except (ValidationError, TypeError, ValueError) as exc:
        return failed_record(config, f"{reason} (its trail was left out: {error_line(exc)})", [], 0.0, env)


def execute_run(config: RunConfig, worker: Worker = Worker(), resume: bool = True,
                callbacks: list[EpochCallback] | None = None) -> ResultRecord | None:  # fmt: skip
    """Train `config` on this worker and write its run files (rank 0). Returns the record on
    rank 0, None elsewhere. Raises UserError for bad input, with nothing written: the run's
    files and its checkpoint are checked before config.yaml is."""
    run = config.run_files()
    if worker.is_chief:
        run.storage.check_writable(config.experiment)  # before any data is loaded or trained on
        run.check_files_writable()
        wandb_mode(config.wandb)  # a WANDB_MODE W&B does not know is refused before anything is written
    checkpoints = Checkpoints(run, worker)
    if not resume:
        checkpoints.clear()
    checkpoints.load(RunShape(PHASES, config.phases.total_epochs()))  # its format, before the costly set-up
    with runlog.capture(enabled=worker.is_chief) as log:  # held in memory until set-up has succeeded
        trainer = set_up(config, worker, checkpoints, list(callbacks or []))
        saved = checkpoints.load(trainer.resume_shape)
        if worker.is_chief:
            # the first line names the run: a Ray worker's log interleaves the runs it held
            if saved is not None:
                print(f"{config.run_id()}: resumed from epoch {saved.epoch} ({run.file_uri(CHECKPOINT_FILE)})", file=sys.stderr)
            else:
                print(f"{config.run_id()}: starts: {config.phases.total_epochs()} epoch(s) on {worker.world_size} worker(s) ({run.uri})", file=sys.stderr)
            run.write_bytes(CONFIG_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode())
        with run.staged() as local, log.kept_in(local, run, fresh=saved is None) as save_log:
            tracker = start_tracking(config, local, worker)
            if tracker:
                trainer.callbacks.append(tracker.log_epoch)
            trainer.callbacks.append(save_log)
            record, model = train_and_test(trainer, run)
            if tracker and record is not None:
                tracker.finish(record, run, local)
    if record is None:
        return None
    record = write_model(run, record, model)
    run.write_record(record)
    if record.finished:
        checkpoints.clear()
    return record


def write_model(run: RunDir, record: ResultRecord, model: torch.nn.Module | None) -> ResultRecord:
    """model.pt of a finished run; a model that cannot be written fails the run (said in its
    record) rather than losing the record."""
    if model is None:
        return record
    try:
        run.write_torch(MODEL_FILE, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    except Exception as exc:
        return record.model_copy(update={"status": STATUS_FAILED, "error": f"cannot write {MODEL_FILE}: {error_line(exc)}"})
    return record


def set_up(config: RunConfig, worker: Worker, checkpoints: Checkpoints, callbacks: list[EpochCallback]) -> Trainer:
    """The trainer, or one line saying why it cannot be built: set-up runs before anything is
    written, so whatever breaks here (an allocation too large, a file of the wrong kind) is
    refused like bad input."""
    try:
        trainer = Trainer(config, worker, checkpoints, callbacks, start_from=stage_model(config))
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise UserError(f"cannot set up run {config.run_id()}: {error_line(exc)}") from None
    check_reachable(config, trainer.model)
    return trainer


def check_reachable(config: RunConfig, model: torch.nn.Module) -> None:
    """A target compression no run of this model can reach (not one weight left in a layer) is
    refused, rather than recorded as a finished run at density 0."""
    layers = prunable_modules(model)
    reachable = sum(module.weight.numel() for _, module in layers) / max(1, len(layers))
    if config.target_compression is not None and config.target_compression > reachable:
        raise UserError(f"target_compression: {config.target_compression:g} is beyond what {config.model.name} can reach "
                        f"({reachable:.6g}: one weight left in each of its {len(layers)} prunable layers)")  # fmt: skip


def crash_reason(run: RunDir, exc: Exception) -> str:
    """A bug or a broken environment: its traceback goes to error.log (when it can be written),
    its first line to the record."""
    try:
        run.write_bytes(ERROR_FILE, traceback.format_exc().encode())
    except Exception:
        return error_line(exc)
    return f"{error_line(exc)} (traceback in {run.file_uri(ERROR_FILE)})"


def train_and_test(trainer: Trainer, run: RunDir) -> tuple[ResultRecord | None, torch.nn.Module | None]:
    """Train, evaluate once on the test split, and build the record; a run that breaks becomes
    a failed record (rank 0) with its reason, trail and environment."""
    began = time.perf_counter()
    worker = trainer.worker
    env = environment(trainer.plan, worker)
    try:
        model = trainer.run()
        test = evaluate(model, trainer.loaders.test, trainer.plan, worker)
    except RunFailed as exc:
        reason = str(exc)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:  # never ranked
        if not worker.is_chief:
            raise
        reason = crash_reason(run, exc)
    else:
        if not worker.is_chief:
            return None, None
        try:
            return finished_record(trainer.facts(), model, test, trainer.state.wall_seconds(began), env), model
        except ValidationError as exc:  # a metric out of range or not finite: recorded as failed, never lost
            field, message = first_problem(exc)
            reason = f"the run ended with an invalid result: {field}: {message} ({exc.errors()[0].get('input')!r})"
        except Exception as exc:
            reason = crash_reason(run, exc)
    finally:
        if trainer.progress:
            trainer.progress.close()
    if not worker.is_chief:
        return None, None
    return failed_record_of(trainer.config, reason, trainer.state.trail, trainer.state.wall_seconds(began), env), None
