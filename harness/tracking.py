"""W&B mirror of a run: per-epoch metrics, the final numbers and the config, from rank 0 only.

result.json stays the source of truth; this is a convenience for watching runs. Without an API
key the run is recorded offline inside the run directory, and an online start that fails (no
key, no network within WANDB_START_S) falls back to offline with one warning (no server needed; `wandb sync` can
upload it later). Only the validated config and metrics are logged: never environment
variables, so the API key cannot leak into the mirror.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from prunebench.core.device import Worker
from prunebench.core.errors import error_line
from prunebench.core.record import METRICS, ResultRecord
from prunebench.harness.config import RunConfig

SUMMARY_KEYS = (*METRICS, "status")  # the record's per-run numbers, from its schema
WANDB_START_S = 20  # an online start that takes longer (no network) falls back to offline


def wandb_mode(setting: str) -> str | None:
    """The W&B mode for the config's `wandb` setting; None when W&B is off.
    auto: online when WANDB_API_KEY is set, offline otherwise."""
    if setting == "disabled":
        return None
    if setting == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return setting


class Tracker:
    """One W&B run. `log_epoch` is a `harness.train` epoch callback; `finish` takes the result record."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def log_epoch(self, entry: dict[str, Any]) -> None:
        numbers = {key: value for key, value in entry.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
        self.run.log(numbers, step=entry["epoch"])

    def finish(self, record: ResultRecord) -> None:
        values = record.model_dump(mode="json", include=set(SUMMARY_KEYS))
        self.run.summary.update({key: value for key, value in values.items() if value is not None})
        self.run.finish(exit_code=0 if record.finished else 1)


def start_tracking(config: RunConfig, run_dir: Path, worker: Worker = Worker()) -> Tracker | None:
    """Open the run's W&B mirror on rank 0 (None elsewhere, or when the config turns W&B off),
    writing under the local folder `run_dir`. The project is WANDB_PROJECT or "prunebench";
    runs are grouped by experiment."""
    mode = wandb_mode(config.wandb)
    if mode is None or not worker.is_chief:
        return None
    import wandb

    run_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(console="off", save_code=False, disable_git=True, disable_job_creation=True,
                              x_disable_stats=True, x_disable_meta=True, silent=True, init_timeout=WANDB_START_S)  # fmt: skip
    try:
        return Tracker(open_run(wandb, config, run_dir, mode, settings))
    except Exception as exc:  # no key, no network, a server that does not answer within init_timeout
        if mode != "online":
            raise
        print(f"prunebench: warning: W&B online did not start ({error_line(exc)}); mirroring offline instead", file=sys.stderr)
        wandb.teardown()  # the failed start still holds the run id in W&B's service
        return Tracker(open_run(wandb, config, run_dir, "offline", settings))


def open_run(wandb: Any, config: RunConfig, run_dir: Path, mode: str, settings: Any) -> Any:
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "prunebench"),
        group=config.experiment,
        name=config.run_id(),
        id=config.run_id(),
        resume="allow",
        mode=mode,
        dir=run_dir,
        config=config.model_dump(mode="json"),
        job_type=config.method.name,
        settings=settings,
    )
