"""The one run lifecycle, for `prunebench run` and for every Ray Train worker alike.

1. Set up (data, model, method: bad input raises UserError here, before anything is written).
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

import time
import traceback

import torch
import yaml
from pydantic import ValidationError

from prunebench.core.device import Worker
from prunebench.core.errors import RunFailed, UserError
from prunebench.core.record import ResultRecord
from prunebench.core.storage import CONFIG_FILE, ERROR_FILE, MODEL_FILE, RunDir
from prunebench.harness import runlog
from prunebench.harness.checkpoints import Checkpoints
from prunebench.harness.config import RunConfig
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
    record = failed_record(config, reason, saved["trail"] if saved else [], saved["elapsed"] if saved else 0.0)
    run.write_record(record)
    return record


def execute_run(config: RunConfig, worker: Worker = Worker(), resume: bool = True,
                callbacks: list[EpochCallback] | None = None) -> ResultRecord | None:  # fmt: skip
    """Train `config` on this worker and write its run files (rank 0). Returns the record on
    rank 0, None elsewhere. Raises UserError for bad input, with nothing written."""
    run = config.run_files()
    if worker.is_chief:
        run.storage.check_writable(config.experiment)  # before any data is loaded or trained on
        wandb_mode(config.wandb)  # a WANDB_MODE W&B does not know is refused before anything is written
    checkpoints = Checkpoints(run, worker)
    if not resume:
        checkpoints.clear()
    with runlog.capture(enabled=worker.is_chief) as log:  # held in memory until set-up has succeeded
        trainer = set_up(config, worker, checkpoints, list(callbacks or []))
        if worker.is_chief:
            run.write_bytes(CONFIG_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode())
        with run.staged() as local, log.kept_in(local, run, fresh=not resume) as save_log:
            tracker = start_tracking(config, local, worker, trainer.method.hparams.model_dump(mode="json"))
            if tracker:
                trainer.callbacks.append(tracker.log_epoch)
            trainer.callbacks.append(save_log)
            record, model = train_and_test(trainer, run)
            if tracker and record is not None:
                tracker.finish(record, run, local)
    if record is None:
        return None
    if model is not None:
        run.write_torch(MODEL_FILE, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    run.write_record(record)
    if record.finished:
        checkpoints.clear()
    return record


def set_up(config: RunConfig, worker: Worker, checkpoints: Checkpoints, callbacks: list[EpochCallback]) -> Trainer:
    """The trainer, or one line saying why it cannot be built: set-up runs before anything is
    written, so whatever breaks here (an allocation too large, a file of the wrong kind) is
    refused like bad input."""
    try:
        return Trainer(config, worker, checkpoints, callbacks, start_from=stage_model(config))
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"cannot set up run {config.run_id()}: {exc.__class__.__name__}: {reason}") from None


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
    except Exception as exc:  # a bug or a broken environment: keep the traceback, never rank it
        if not worker.is_chief:
            raise
        run.write_bytes(ERROR_FILE, traceback.format_exc().encode())
        reason = f"{exc.__class__.__name__}: {exc}".splitlines()[0] + f" (traceback in {run.file_uri(ERROR_FILE)})"
    else:
        if not worker.is_chief:
            return None, None
        try:
            return finished_record(trainer, model, test, trainer.state.wall_seconds(began), env), model
        except ValidationError as exc:  # a metric out of range or not finite: recorded as failed, never lost
            first = exc.errors()[0]
            reason = f"the run ended with an invalid result: {'.'.join(map(str, first['loc']))}: {first['msg']} ({first.get('input')!r})"
    finally:
        if trainer.progress:
            trainer.progress.close()
    if not worker.is_chief:
        return None, None
    return failed_record(trainer.config, reason, trainer.state.trail, trainer.state.wall_seconds(began), env), None
