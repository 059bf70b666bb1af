"""The record schema is the only list of record keys: the writer's output, the store's reader,
the W&B mirror and the exports all follow it; old records still read, bad ones are refused."""

from __future__ import annotations

import json

import pytest
from support.records import make_record, write_runs

from prunebench.core.record import METRICS, SCHEMA_VERSION, ResultRecord
from prunebench.harness.tracking import SUMMARY_KEYS
from prunebench.leaderboard.store import load_runs
from prunebench.leaderboard.views.export import ROW_COLUMNS


def test_written_records_hold_exactly_the_schema(smoke_results):
    record = smoke_results("global")
    assert set(record) == set(ResultRecord.model_fields)
    assert record["schema_version"] == SCHEMA_VERSION
    assert ResultRecord.model_validate(record).model_dump(mode="json") == record


def test_mirror_and_exports_take_their_keys_from_the_schema():
    assert set(SUMMARY_KEYS) - {"status"} == set(METRICS)
    exported = {column for column in ROW_COLUMNS if column in ResultRecord.model_fields}
    assert set(METRICS) <= exported


def test_per_layer_facts_add_up_to_the_record(smoke_results):
    record = smoke_results("ns")
    layers = record["layers"]
    assert sum(layer["macs"] for layer in layers) == record["macs"]
    assert sum(layer["macs_dense"] for layer in layers) == record["macs_dense"]
    assert sum(layer["weights_nonzero"] for layer in layers) == record["prunable_nonzero"]
    assert any(layer["out_channels"] < layer["out_channels_dense"] for layer in layers), "NS removed channels"


def test_version_1_records_still_read(tmp_path):
    old = make_record(seed=0)
    for key in ("schema_version", "configuration", "layers"):
        old.pop(key, None)
    path = tmp_path / "unit" / old["run_id"] / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    runs, problems = load_runs(tmp_path)
    assert problems == [] and len(runs) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"density": -0.1}, "density"), ({"top1": 1.5}, "top1"), ({"seed": True}, "seed"),
    ({"compression_rate": 0.5}, "compression_rate"), ({"macs": -3}, "macs"), ({"surprise": 1}, "surprise"),
    ({"histograms": [{"name": "|alpha|", "edges": [0.0, 1.0], "counts": [3, 4]}]}, "histograms"),
])  # fmt: skip
def test_out_of_range_records_are_skipped_naming_the_field(tmp_path, change, field):
    write_runs(tmp_path, [make_record(seed=0)])
    bad = {**make_record(seed=1), **change}
    path = tmp_path / "unit" / "bad" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(bad))
    runs, problems = load_runs(tmp_path)
    assert len(runs) == 1 and len(problems) == 1 and str(path) in problems[0] and field in problems[0]
