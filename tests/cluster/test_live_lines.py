"""The driver's live lines (cluster/live.py) without a cluster: one line per running run under
the runs bar on a terminal, changed in place; elsewhere a plain line for each new epoch line.
A grid on a real cluster shows them too (tests/cluster/test_cluster.py)."""

from __future__ import annotations

import io

import ray

from tqdm import tqdm

from prunebench.cluster.live import LiveLinesCallback


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_shows_one_line_per_running_run_in_place() -> None:
    screen = Terminal()
    with tqdm(total=2, file=screen) as bar:
        live = LiveLinesCallback(bar, actor=None)
        live.show({"run-a": "epoch   1/3 [dense   ] live model: ...", "run-b": "epoch   2/3 [prune   ] ..."}, running={"run-a", "run-b"})
        assert [row.desc for row in live.rows] == ["run-a: epoch   1/3 [dense   ] live model: ...", "run-b: epoch   2/3 [prune   ] ..."]
        live.show({"run-a": "epoch   2/3 [prune   ] ...", "run-b": "epoch   2/3 [prune   ] ..."}, running={"run-a"})
        assert [row.desc for row in live.rows] == ["run-a: epoch   2/3 [prune   ] ...", ""], "a run that ended leaves its row"
        for row in live.rows:
            row.close()
    assert "run-b: epoch   2/3" in screen.getvalue()


def test_elsewhere_each_new_line_once() -> None:
    out = io.StringIO()
    with tqdm(total=2, file=out) as bar:
        live = LiveLinesCallback(bar, actor=None)
        live.show({"run-a": "epoch 1"}, running={"run-a"})
        live.show({"run-a": "epoch 1", "run-b": "epoch 1"}, running={"run-b"})
        live.show({"run-a": "epoch 2", "run-b": "epoch 1"}, running=set())  # ended runs' last lines too
    lines = [line.split("\r")[-1] for line in out.getvalue().splitlines() if "run-" in line]
    assert lines == ["run-a: epoch 1", "run-b: epoch 1", "run-a: epoch 2"] and live.rows == []


class LostActor:
    """An actor on a node that was lost: every call raises as Ray's handle does."""

    class latest:  # noqa: N801 - the handle's method, as `actor.latest.remote()`
        calls = 0

        @classmethod
        def remote(cls) -> None:
            cls.calls += 1
            raise ray.exceptions.ActorDiedError()


def test_a_lost_actor_stops_the_lines_once_and_the_grid_goes_on() -> None:
    out = io.StringIO()
    with tqdm(total=2, file=out) as bar:
        live = LiveLinesCallback(bar, actor=LostActor())
        assert live.latest() == {} and live.latest() == {}
        live.close()
    assert LostActor.latest.calls == 1, "a lost actor is not asked again"
    assert out.getvalue().count("live lines stopped (their actor was lost: ActorDiedError); the runs go on") == 1
