"""W&B mirror of a run: per-epoch metrics, the final numbers and the config, from rank 0 only.

result.json stays the source of truth; this is a convenience for watching runs. W&B's own
environment is followed: `wandb: auto` (the default) takes WANDB_MODE when it is set, else runs
online when WANDB_API_KEY is set and not at all otherwise; WANDB_DIR, when set, is where the
files go, else the run directory (an offline run: `wandb sync` uploads it later). An online
start that fails (no key, no network within WANDB_START_S) falls back to offline with one
warning. Only the validated config (the method's hyper-parameters with their defaults filled)
and metrics are logged: never environment variables, so the API key cannot leak into the mirror.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from prunebench.core.device import Worker
from prunebench.core.errors import UserError, error_line
from prunebench.core.record import METRICS, ResultRecord
from prunebench.core.storage import RunDir
from prunebench.harness.config import RunConfig

SUMMARY_KEYS = (*METRICS, "status")  # the record's per-run numbers, from its schema
WANDB_START_S = 20  # an online start that takes longer (no network) falls back to offline
# WANDB_MODE's values (W&B's own, "dryrun" and "run" its older names) -> the mode; None: off
ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": None}


def wandb_mode(setting: str) -> str | None:
    """The W&B mode for the config's `wandb` setting; None when W&B is off. A setting the config
    names wins; auto: WANDB_MODE when set, else online with WANDB_API_KEY, else off."""
    if setting != "auto":
        return None if setting == "disabled" else setting
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env:
        if env not in ENV_MODES:
            raise UserError(f"WANDB_MODE: expected {', '.join(ENV_MODES)}, got {env!r}")
        return ENV_MODES[env]
    return "online" if os.environ.get("WANDB_API_KEY") else None


class Tracker:
    """One W&B run. `log_epoch` is a `harness.train` epoch callback; `finish` takes the result record."""

    def __init__(self, run: Any, config: RunConfig) -> None:
        self.run, self.config = run, config

    def log_epoch(self, entry: dict[str, Any]) -> None:
        numbers = {key: value for key, value in entry.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
        self.run.log({**numbers, "phase": entry["phase"]}, step=entry["epoch"])

    def finish(self, record: ResultRecord, run_dir: RunDir, local: Path) -> None:
        """The record's numbers, latency, speedup and the change of top-1 into the summary; one
        line on stderr saying where an offline run is and how to upload it."""
        values = record.model_dump(mode="json", include=set(SUMMARY_KEYS))
        summary = {key: value for key, value in values.items() if value is not None}
        self.run.summary.update({**summary, **latency_summary(record), **top1_change(record, self.config)})
        offline = self.run.settings.mode == "offline"
        files = Path(self.run.settings.sync_dir)
        self.run.finish(exit_code=0 if record.finished else 1)
        if offline:
            print(offline_line(files, run_dir, local), flush=True)


def latency_summary(record: ResultRecord) -> dict[str, Any]:
    """Per measured batch size B: `latency_ms/bB`, `dense_latency_ms/bB`, `speedup/bB`."""
    latency = record.latency
    if latency is None:
        return {}
    summary: dict[str, Any] = {"latency_device": latency.speed_device}
    for batch in latency.batch_sizes:
        summary |= {f"latency_ms/b{batch}": latency.ms[batch], f"dense_latency_ms/b{batch}": latency.dense_ms[batch],
                    f"speedup/b{batch}": latency.speedup[batch]}  # fmt: skip
    return summary


def top1_change(record: ResultRecord, config: RunConfig) -> dict[str, Any]:
    """top-1 minus that of the run's dense stage (same model, data and seed) when it has one
    and it finished. A run without a stage has no dense reference of its own: the
    leaderboard's Δ top-1 compares it with its track's dense runs."""
    stage = config.model.dense_stage
    if stage is None or record.top1 is None:
        return {}
    reference = config.run_files().storage.run(config.experiment, stage.run_id).read_result() or {}
    if reference.get("status") != "finished" or not isinstance(reference.get("top1"), (int, float)):
        return {}
    return {"top1_change": record.top1 - reference["top1"], "dense_reference": stage.run_id}


def offline_line(files: Path, run_dir: RunDir, local: Path) -> str:
    """Where the offline run is (in the run directory once it is uploaded, for a storage URI)."""
    if run_dir.storage.is_local or not files.is_relative_to(local):
        return f"wandb: offline run in {files}; upload it with: wandb sync {files}"
    remote = run_dir.file_uri(files.relative_to(local).as_posix())
    return f"wandb: offline run in {remote}; copy it to a local folder and upload it with: wandb sync FOLDER"


def start_tracking(config: RunConfig, run_dir: Path, worker: Worker = Worker()) -> Tracker | None:
    """Open the run's W&B mirror on rank 0 (None elsewhere, or when W&B is off), writing under
    WANDB_DIR or else the local folder `run_dir`. The config's method hyper-parameters are the
    validated ones (defaults filled). The project is WANDB_PROJECT or "prunebench";
    runs are grouped by experiment."""
    mode = wandb_mode(config.wandb)
    if mode is None or not worker.is_chief:
        return None
    import wandb

    run_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(console="off", save_code=False, disable_git=True, disable_job_creation=True,
                              x_disable_stats=True, x_disable_meta=True, silent=True, init_timeout=WANDB_START_S)  # fmt: skip
    try:
        return Tracker(open_run(wandb, config, run_dir, mode, settings), config)
    except Exception as exc:  # no key, no network, a server that does not answer within init_timeout
        if mode != "online":
            raise
        print(f"prunebench: warning: W&B online did not start ({error_line(exc)}); mirroring offline instead", file=sys.stderr)
        wandb.teardown()  # the failed start still holds the run id in W&B's service
        return Tracker(open_run(wandb, config, run_dir, "offline", settings), config)


def open_run(wandb: Any, config: RunConfig, run_dir: Path, mode: str, settings: Any) -> Any:
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "prunebench"),
        group=config.experiment,
        name=config.run_id(),
        id=config.run_id(),
        resume="allow",
        mode=mode,
        dir=os.environ.get("WANDB_DIR") or run_dir,
        config=config.model_dump(mode="json"),
        job_type=config.method.name,
        settings=settings,
    )
