"""Reading result records from files and from W&B."""

from __future__ import annotations

import json
import sys
import types

import pytest
from support.records import failed_record, make_record, write_runs

from prunebench.core.errors import UserError
from prunebench.leaderboard.store import load_runs


def test_reads_every_result_file_recursively(tmp_path):
    write_runs(tmp_path, [make_record(seed=s, experiment=e) for s, e in [(0, "a"), (1, "a"), (2, "deep/er")]])
    runs, problems = load_runs(tmp_path)
    assert sorted(runs["seed"]) == [0, 1, 2] and problems == []
    assert set(runs["input_size"]) == {"3x32x32"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({**make_record(), "top1": "high"}), "top1 is not a number"),
        (json.dumps({**make_record(), "hparams": []}), "hparams is not an object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unusable_records_are_named_and_skipped(tmp_path, content, reason):
    write_runs(tmp_path, [make_record(seed=0)])
    bad = tmp_path / "x" / "result.json"
    bad.parent.mkdir()
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    runs, problems = load_runs(tmp_path)
    assert len(runs) == 1
    assert len(problems) == 1 and str(bad) in problems[0] and reason in problems[0]


def test_a_run_read_twice_is_counted_once(tmp_path):
    record = make_record()
    write_runs(tmp_path / "one", [record])
    write_runs(tmp_path / "two", [record])
    runs, problems = load_runs(tmp_path)
    assert len(runs) == 1 and problems == [f"skipped {tmp_path / 'two' / 'unit' / record['run_id'] / 'result.json'}: run {record['run_id']} also in {runs['origin'][0]}"]


def test_a_finished_rerun_supersedes_the_failed_attempt(tmp_path):
    finished = make_record(seed=0)
    write_runs(tmp_path / "a", [failed_record(seed=0, run_id=finished["run_id"])])
    write_runs(tmp_path / "b", [finished])
    runs, problems = load_runs(tmp_path)
    assert list(runs["status"]) == ["finished"] and str(tmp_path / "a") in problems[0]


class _Run:
    def __init__(self, record: dict) -> None:
        self.id = record["run_id"]
        self.config = {k: v for k, v in record.items() if k in ("method", "model", "dataset", "seed", "hparams")}
        self.summary = types.SimpleNamespace(_json_dict={k: v for k, v in record.items() if k not in self.config})


def _fake_wandb(monkeypatch, runs=None, error=None):
    calls = []

    class Api:
        def __init__(self, timeout=None):
            if error:
                raise error

        def runs(self, path, filters=None):
            calls.append((path, filters))
            return runs

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Api=Api))
    return calls


def test_reads_finished_runs_from_wandb(monkeypatch, tmp_path):
    calls = _fake_wandb(monkeypatch, runs=[_Run(make_record(seed=5)), _Run({"run_id": "half", "method": "ltp"})])
    write_runs(tmp_path, [make_record(seed=0)])
    runs, problems = load_runs(tmp_path, wandb="team/pruning")
    assert calls == [("team/pruning", {"state": "finished"})]
    assert sorted(runs["seed"]) == [0, 5]
    assert len(problems) == 1 and "wandb:team/pruning/half" in problems[0]


def test_wandb_records_are_held_to_the_limits_of_files(monkeypatch):
    _fake_wandb(monkeypatch, runs=[_Run(make_record(seed=5)), _Run(make_record(seed=6, top1=float("nan")))])
    runs, problems = load_runs(wandb="team/pruning")
    assert list(runs["seed"]) == [5]
    assert len(problems) == 1 and "top1 is not a finite number" in problems[0]


@pytest.mark.parametrize(
    ("project", "error", "message"),
    [
        ("team/pruning", ConnectionError("Max retries exceeded\nsecond line"), "--wandb team/pruning: cannot read runs (ConnectionError: Max retries exceeded)"),
        ("just-a-name", None, "expected ENTITY/PROJECT"),
    ],
)
def test_wandb_failures_are_one_line(monkeypatch, project, error, message):
    _fake_wandb(monkeypatch, runs=[], error=error)
    with pytest.raises(UserError) as caught:
        load_runs(wandb=project)
    assert message in str(caught.value) and "\n" not in str(caught.value)
