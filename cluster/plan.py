"""The plan of a grid submission: its runs, and which of them are already done.

Runs are named by their config hash, so submitting a grid again is idempotent: runs with a
finished result.json are skipped, interrupted ones resume from their last checkpoint, and runs
recorded as failed are kept unless retried (`--resume`). Planning needs no Ray cluster.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cluster.grid import Grid, PlannedRun, expand_grid, load_grid
from core.record import STATUS_FAILED, STATUS_FINISHED
from core.storage import CHECKPOINT_FILE, RunDir, Storage

# A run's state: a result exists (finished, failed), a checkpoint exists (resume), nothing yet
# (new), or, after a submission, skipped because its dense stage did not finish.
FINISHED, FAILED, RESUME, NEW, SKIPPED = STATUS_FINISHED, STATUS_FAILED, "resume", "new", "skipped"


@dataclass
class Plan:
    grid: Grid
    runs: list[PlannedRun]
    storage: Storage

    def run_files(self, run_id: str) -> RunDir:
        return self.storage.run(self.grid.experiment, run_id)

    def state(self, run_id: str) -> str:
        """finished / failed (a result exists), resume (a checkpoint exists) or new."""
        run = self.run_files(run_id)
        record = run.read_result()
        if isinstance(record, dict):
            return FINISHED if record.get("status") == FINISHED else FAILED
        return RESUME if run.exists(CHECKPOINT_FILE) else NEW


def plan_grid(path: str, overrides: list[str]) -> Plan:
    """Load, expand and validate the grid: every run is checked before anything starts."""
    grid = load_grid(path, overrides)
    return Plan(grid, expand_grid(grid, str(path)), Storage(grid.storage_path))


def plan_lines(plan: Plan) -> list[str]:
    """One line per run: its state, method, hyper-parameters and run id."""
    return [f"[{plan.state(run.config.run_id()):<8}] {run.describe()}" for run in plan.runs]


def plan_summary(plan: Plan) -> str:
    counts = Counter(plan.state(run.config.run_id()) for run in plan.runs)
    parts = ", ".join(f"{counts[state]} {state}" for state in (NEW, RESUME, FAILED, FINISHED) if counts[state])
    spec = plan.grid.cluster
    return (f"{plan.grid.experiment}: {len(plan.runs)} run(s) ({parts}) -> {plan.storage.root}/{plan.grid.experiment}; "
            f"{spec.workers_per_run} worker(s) per run, up to {spec.max_concurrent_runs} at a time")  # fmt: skip
