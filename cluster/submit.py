"""Driver of `prunebench submit`: run what is left of a plan as Ray Tune trials.

Each run is one Tune trial (see trial.py); under the runs bar, each running run's latest epoch
line (live.py). Dense stages run in a first wave, and the runs that start from their model in a
second one; a run whose stage did not finish is skipped.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Any

from ray import tune
from tqdm import tqdm

from prunebench.cluster.grid import PlannedRun
from prunebench.cluster.live import live_lines
from prunebench.cluster.plan import FAILED, NEW, RESUME, SKIPPED, Plan
from prunebench.cluster.trial import job_payload, record_abandoned_trials, run_trial, trial_resources
from prunebench.leaderboard import render_views

LEADERBOARD_FILE = "{experiment}.leaderboard.html"  # beside the experiment's directory of runs


class ProgressCallback(tune.Callback):
    """Advances the driver's progress bar as trials end."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config for `Tuner.restore` (unused here); the bar stays in this process."""
        return {"bar": None}

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(f"{trial.config['run_id']}: {trial.last_result.get('status', '?')}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.bar.update(1)
        self.bar.set_postfix_str(f"{trial.config['run_id']}: error")


def run_wave(plan: Plan, runs: list[PlannedRun], callbacks: list[tune.Callback]) -> None:
    """Runs that do not wait on each other, as one Tune experiment."""
    if not runs:
        return
    jobs = {run.config.run_id(): job_payload(run.config, plan.grid.cluster) for run in runs}
    trial = tune.with_resources(tune.with_parameters(run_trial, jobs=jobs), trial_resources(plan.grid.cluster))
    with tempfile.TemporaryDirectory(prefix="prunebench-tune-") as tune_dir:  # Tune's bookkeeping, not results
        tuner = tune.Tuner(
            trial,
            param_space={"run_id": tune.grid_search(list(jobs))},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=plan.grid.cluster.max_concurrent_runs,
                # the next run of a wave starts in the finished trial's process (Ray 2.60 defaults
                # to False; tune/trainable/function_trainable.py reset_config): no new interpreter
                # importing Ray and torch per run; a failed trial's process is not reused
                reuse_actors=True,
                trial_name_creator=lambda t: t.config["run_id"],
                trial_dirname_creator=lambda t: t.config["run_id"],
            ),
            run_config=tune.RunConfig(
                name=plan.grid.experiment,
                storage_path=tune_dir,
                verbose=0,
                callbacks=callbacks,
                # a trial lost with its process or node starts again; the run resumes from its checkpoint
                failure_config=tune.FailureConfig(max_failures=plan.grid.cluster.max_failures),
            ),
        )
        record_abandoned_trials(tuner.fit(), jobs)


def run_grid(plan: Plan, resume: bool = False) -> dict[str, str]:
    """Run what is left of the plan on the connected Ray cluster; returns each run's final state
    (finished, failed or skipped when its dense stage did not finish)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's new output prints banners even at verbose=0
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C stops the grid, not just the current wave
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    states = {run.config.run_id(): plan.state(run.config.run_id()) for run in plan.runs}
    to_run = (NEW, RESUME, FAILED) if resume else (NEW, RESUME)
    pending = [run for run in plan.runs if states[run.config.run_id()] in to_run]

    def ready(run: PlannedRun) -> bool:
        return run.stage is None or plan.run_files(run.stage).is_finished()

    with tqdm(total=len(plan.runs), initial=len(plan.runs) - len(pending), desc=plan.grid.experiment, unit="run", file=sys.stderr) as bar, \
            live_lines(bar) as lines:  # fmt: skip
        callbacks = [ProgressCallback(bar), lines]
        first = [run for run in pending if ready(run)]
        run_wave(plan, first, callbacks)
        run_wave(plan, [run for run in pending if run not in first and ready(run)], callbacks)
    final = {run_id: plan.state(run_id) for run_id in states}
    return {run_id: SKIPPED if state in (NEW, RESUME) else state for run_id, state in final.items()}


def write_leaderboard(plan: Plan) -> tuple[str, str]:
    """The experiment's leaderboard, read once from its storage (a directory or a URI): the
    terminal table, and where its self-contained HTML page now is, written beside the runs in
    that storage (as a user names it), so that a driver that ran on the cluster (`ray job
    submit`) leaves it with the results."""
    views = render_views(plan.storage.uri(plan.grid.experiment), ("table", "html"))
    name = LEADERBOARD_FILE.format(experiment=plan.grid.experiment)
    plan.storage.write_bytes(name, views["html"].encode("utf-8"))
    return views["table"], plan.storage.uri(name)
