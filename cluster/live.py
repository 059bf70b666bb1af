"""Live lines of `prunebench submit`: under the runs bar, each running run's latest epoch line,
as Ray Tune's own table shows its trials.

Rank 0 of every run sends its epoch lines to one small actor of the driver's Ray job
(`LiveLines`, found by its name, asking for no CPU); the driver's Tune callback asks it for the
lines as Tune's loop turns (at most every POLL_S) and shows them: on a terminal, one line per
running run under the bar, changed in place; elsewhere (a pipe, a file, `ray job submit`) a
plain `RUN_ID: LINE` each time a run has a new line, the last ones included when the grid ends.
The actor lives on the driver's own node, so that losing a worker node does not take it; the
lines are a view, so if the actor is lost anyway they stop (said once) and the grid goes on.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import ray
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm import tqdm

from prunebench.harness.config import RunConfig
from prunebench.harness.progress import epoch_line
from prunebench.harness.train import EpochCallback

ACTOR_NAME = "prunebench-live-lines-{job}"  # one per driver: its Ray job's id
POLL_S = 1.0


@ray.remote(num_cpus=0)
class LiveLines:
    """The latest epoch line of each run of the grid."""

    def __init__(self) -> None:
        self.lines: dict[str, str] = {}

    def put(self, run_id: str, line: str) -> None:
        self.lines[run_id] = line

    def latest(self) -> dict[str, str]:
        return self.lines


def actor_name() -> str:
    """The same in the driver and in every trial and worker it starts: they share its job."""
    return ACTOR_NAME.format(job=ray.get_runtime_context().get_job_id())


def publisher(config: RunConfig) -> list[EpochCallback]:
    """The epoch callback of rank 0 that sends the run's epoch lines to its driver; none when no
    driver shows them (a worker started otherwise)."""
    try:
        actor = ray.get_actor(actor_name())
    except ValueError:
        return []
    run_id, total = config.run_id(), config.phases.total_epochs()
    return [lambda entry: actor.put.remote(run_id, epoch_line(entry, total))]


class LiveLinesCallback(tune.Callback):
    """Shows the runs' latest lines under the driver's runs bar as Tune's loop turns."""

    def __init__(self, bar: tqdm, actor: Any) -> None:
        self.bar, self.actor = bar, actor
        self.terminal = bool(getattr(bar.fp, "isatty", lambda: False)())
        self.rows: list[tqdm] = []  # on a terminal: the lines under the bar
        self.shown: dict[str, str] = {}
        self.polled = 0.0

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config for `Tuner.restore` (unused here); the display stays in this process."""
        return {}

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self.polled < POLL_S:
            return
        self.polled = time.monotonic()
        running = {trial.config["run_id"] for trial in trials if trial.status == "RUNNING"}
        self.show(self.latest(), running)

    def latest(self) -> dict[str, str]:
        """The actor's lines; none, from now on, once the actor is lost."""
        if self.actor is None:
            return {}
        try:
            return ray.get(self.actor.latest.remote())
        except ray.exceptions.RayActorError as exc:
            self.actor = None
            self.bar.write(f"live lines stopped (their actor was lost: {type(exc).__name__}); the runs go on", file=self.bar.fp)
            return {}

    def show(self, lines: dict[str, str], running: set[str]) -> None:
        if not self.terminal:
            for run_id, line in lines.items():
                if self.shown.get(run_id) != line:
                    self.bar.write(f"{run_id}: {line}", file=self.bar.fp)
            self.shown = dict(lines)
            return
        texts = [f"{run_id}: {line}" for run_id, line in sorted(lines.items()) if run_id in running]
        while len(self.rows) < len(texts):
            self.rows.append(tqdm(total=0, position=len(self.rows) + 1, bar_format="{desc}", file=self.bar.fp, leave=False, dynamic_ncols=True))
        for row, text in zip(self.rows, texts + [""] * (len(self.rows) - len(texts))):
            row.set_description_str(text)

    def close(self) -> None:
        """The lines not shown yet (elsewhere than on a terminal), then the rows cleared."""
        self.show(self.latest(), set())
        for row in self.rows:
            row.close()


@contextmanager
def live_lines(bar: tqdm) -> Iterator[LiveLinesCallback]:
    """The driver's actor and callback for one grid; the actor ends with the block."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)  # the driver's node
    actor = LiveLines.options(name=actor_name(), scheduling_strategy=here).remote()
    callback = LiveLinesCallback(bar, actor)
    try:
        yield callback
    finally:
        try:
            callback.close()
        finally:
            ray.kill(actor)
