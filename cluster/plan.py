"""The plan of a grid submission: its runs, and which of them are already done.

Runs are named by their config hash, so submitting a grid again is idempotent: runs with a
finished result.json are skipped, interrupted ones resume from their last checkpoint, and runs
recorded as failed are kept unless retried (`--resume`). Planning needs no Ray cluster.

Planning refuses, before building any run, a grid larger than `max_runs` (a typo in an axis
can ask for 100,000 runs), and a remote storage that does not answer within seconds (the dry
run reads each run's state from it).
"""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass

from prunebench.cluster.grid import Grid, GridExpansion, PlannedRun, load_grid
from prunebench.core.errors import UserError
from prunebench.core.identity import renamed
from prunebench.core.record import STATUS_FAILED, STATUS_FINISHED
from prunebench.core.storage import CHECKPOINT_FILE, RESULT_FILE, RunDir, Storage, UnreadableResult, probe_remote
from prunebench.core.text import printable
from prunebench.harness.datasets import training_images, worker_batch

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

    def states(self) -> dict[str, str]:
        """Every run's state, by run id, in plan order."""
        return {run.config.run_id(): self.state(run.config.run_id()) for run in self.runs}

    def renamed_runs(self) -> dict[str, str]:
        """Finished runs of the experiment named before run ids hashed the validated
        hyper-parameters (core.identity), by their old run id: the plan's run id each now has.
        Only the experiment's records that no planned run names are read."""
        planned = {run.config.config_hash(): run.config.run_id() for run in self.runs}
        found = {}
        for path in self.storage.files(self.grid.experiment):
            run_id = posixpath.basename(posixpath.dirname(path))
            if posixpath.basename(path) != RESULT_FILE or run_id in planned.values():
                continue
            try:
                record = self.storage.read_result_at(path)
            except (OSError, UnreadableResult):
                continue
            now = renamed(record) if isinstance(record, dict) and record.get("status") == FINISHED else None
            if now in planned:
                found[run_id] = planned[now]
        return found


def plan_grid(path: str, overrides: list[str], max_runs: int | None = None) -> Plan:
    """Load the grid, refuse it when it has more than `max_runs` runs (None: any number),
    check that its storage answers, then expand and validate every run before anything starts."""
    grid = load_grid(path, overrides)
    expansion = GridExpansion(grid, str(path))
    count = expansion.count()
    if max_runs is not None and count > max_runs:
        raise UserError(f"{path}: the grid has {count} runs, more than --max-runs {max_runs}; "
                        "give --yes to plan them all, or a larger --max-runs")  # fmt: skip
    probe_remote(grid.storage_path, grid.experiment)  # the reads of run states that follow are not bounded one by one
    runs = expansion.runs()
    for run in runs:
        try:
            worker_batch(run.config.data.batch_size, grid.cluster.workers_per_run)
        except UserError as exc:
            raise UserError(f"{path}: {run.config.run_id()}: {exc} (cluster.workers_per_run)") from None
    return Plan(grid, runs, Storage(grid.storage_path))


def batch_text(plan: Plan, run: PlannedRun) -> str:
    """'global batch 256 = 8 x 32': the batch of one optimizer step and each worker's share."""
    workers, batch = plan.grid.cluster.workers_per_run, run.config.data.batch_size
    return f"global batch {batch}" + (f" = {workers} x {batch // workers}" if workers > 1 else "")


def plan_lines(plan: Plan, states: dict[str, str]) -> list[str]:
    """One printable line per run: its state, method, hyper-parameters, global batch and run id."""
    return [printable(f"[{states[run.config.run_id()]:<8}] {run.describe()}  {batch_text(plan, run)}") for run in plan.runs]


def plan_summary(plan: Plan, states: dict[str, str]) -> str:
    """One line: how many runs in which state, where they go, how they are scheduled."""
    counts = Counter(states.values())
    parts = ", ".join(f"{counts[state]} {state}" for state in (NEW, RESUME, FAILED, FINISHED) if counts[state])
    spec = plan.grid.cluster
    return (f"{plan.grid.experiment}: {len(plan.runs)} run(s) ({parts}) -> {plan.storage.uri(plan.grid.experiment)}; "
            f"{spec.workers_per_run} worker(s) per run, up to {spec.max_concurrent_runs} at a time")  # fmt: skip


def renamed_warning(renamed_runs: dict[str, str]) -> str | None:
    """One line naming the finished runs a store holds under their old run ids, or None."""
    if not renamed_runs:
        return None
    pairs = ", ".join(f"{old} -> {new}" for old, new in renamed_runs.items())
    return printable(f"warning: {len(renamed_runs)} finished run(s) were named before run ids hashed the validated "
                     f"hyper-parameters and are not recognised; they run again under their new ids ({pairs}); "
                     "the old records stay and show as rows of their own")  # fmt: skip


def run_cost(run: PlannedRun) -> tuple[int, int]:
    """(epochs, images) the run trains: a run that starts from a dense stage does not train the
    stage's dense epochs again (the stage is a run of the plan and counts them once)."""
    config = run.config
    epochs = config.phases.total_epochs() - (config.phases.dense.epochs if config.model.dense_stage else 0)
    return epochs, epochs * training_images(config.data)


def plan_cost(plan: Plan, states: dict[str, str]) -> str:
    """One line: what the grid still has to train (finished runs cost nothing again), so that
    its cost is known before it is submitted."""
    left = [run for run in plan.runs if states[run.config.run_id()] != FINISHED]
    costs = [run_cost(run) for run in left]
    epochs, images = sum(cost[0] for cost in costs), sum(cost[1] for cost in costs)
    return printable(f"{plan.grid.experiment}: cost {len(left)} of {len(plan.runs)} run(s) not finished, {epochs:,} epochs, "
                     f"{images:,} training images to process")
