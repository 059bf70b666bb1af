"""Latency in the record: the measurement's protocol (clock choice, alternating pairs, bounds),
its place in the schema, its config outside the run's identity, and a finished run carrying it.
Only structure is asserted here: speed itself is measured in bench/, never in a timed test."""

from __future__ import annotations

import copy

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from prunebench.core import latency
from prunebench.core.device import plan_device
from prunebench.core.errors import UserError
from prunebench.core.record import Latency, ResultRecord
from prunebench.harness.lifecycle import execute_run
from prunebench.harness.validation import validate_run_config

pytestmark = pytest.mark.slow  # whole runs, timed: not in `make test-fast`

CPU = plan_device("off", cuda_available=False)
RUN = {
    "experiment": "latency",
    "model": {"name": "lenet_300_100"},
    "data": {"name": "digits", "layout": "flat", "batch_size": 64},
    "method": {"name": "global", "hparams": {"schedule": "one_shot"}},
    "phases": {"prune": 1},
    "target_compression": 4.0,
    "threads": 1,
    "latency": {"seconds": 0.2},
}


def test_a_gpu_plan_times_with_cuda_events_and_a_cpu_plan_with_the_wall_clock() -> None:
    gpu = plan_device("auto", cuda_available=True, bf16_supported=True)
    assert latency.clock_for(gpu) == ("cuda events", latency.cuda_event_clock)
    assert latency.clock_for(CPU) == ("wall clock", latency.wall_clock)


def test_pairs_alternate_which_model_goes_first_and_respect_the_bounds() -> None:
    calls: list[str] = []

    def fake_clock(run, count):  # every sample "takes" 1 s: no sample is repeated within itself
        calls.append(run())
        return 1.0

    dense, pruned = latency.time_pairs(lambda: "d", lambda: "p", fake_clock, seconds=0.0)
    timed = calls[2 * latency.WARMUP_CALLS:]
    assert len(dense) == len(pruned) == latency.MIN_PAIRS  # budget spent: the minimum still runs
    assert timed == ["d", "p", "p", "d", "d", "p"]
    calls.clear()
    assert len(latency.time_pairs(lambda: "d", lambda: "p", fake_clock, seconds=1e9)[0]) == latency.MAX_PAIRS


def test_measurement_covers_every_batch_size_and_restores_training_mode() -> None:
    dense, pruned = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)), nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    dense.train()
    figures = latency.measure_latency(dense, pruned, (16,), CPU, [1, 8], seconds=0.05)
    assert dense.training and pruned.training
    assert figures["batch_sizes"] == [1, 8] and figures["threads"] == torch.get_num_threads()
    assert figures["device"].startswith("cpu ") and figures["clock"] == "wall clock"
    for key in ("ms", "dense_ms", "speedup"):
        assert set(figures[key]) == {1, 8}
        for batch, (q1, q3) in figures[f"{key}_iqr"].items():
            assert 0 < q1 <= figures[key][batch] <= q3
    assert all(pairs >= latency.MIN_PAIRS for pairs in figures["pairs"].values())
    assert Latency.model_validate(figures).speed_device.endswith(f"{torch.get_num_threads()} thread" + "s" * (torch.get_num_threads() != 1))


def test_latency_settings_do_not_change_the_run_identity_and_bad_ones_name_the_field() -> None:
    base = validate_run_config(copy.deepcopy(RUN))
    other = validate_run_config({**copy.deepcopy(RUN), "latency": {"enabled": False, "batch_sizes": [1, 32], "seconds": 9}})
    assert base.run_id() == other.run_id() and base.configuration_hash() == other.configuration_hash()
    for bad, field in (({"batch_sizes": [1, 1]}, "distinct"), ({"batch_sizes": []}, "at least 1"), ({"batch_sizes": [True]}, "integer"),
                       ({"seconds": 0}, "greater than 0"), ({"budget": 1}, "unknown key")):  # fmt: skip
        with pytest.raises(UserError, match=rf"latency\.\w+.*{field}"):
            validate_run_config({**copy.deepcopy(RUN), "latency": bad})


def test_records_without_latency_still_validate_and_a_partial_latency_does_not(tmp_path) -> None:
    config = {**copy.deepcopy(RUN), "output_dir": str(tmp_path)}
    record = execute_run(validate_run_config(config)).model_dump(mode="json")
    measured = record["latency"]
    assert measured["batch_sizes"] == [1, 64] and set(measured["speedup"]) == {"1", "64"}  # JSON keys
    assert all(value > 0 for value in measured["speedup"].values())
    old = {key: value for key, value in record.items() if key != "latency"} | {"schema_version": 2}
    assert ResultRecord.model_validate(old).latency is None
    partial = copy.deepcopy(record)
    del partial["latency"]["dense_ms"]["64"]
    with pytest.raises(ValidationError, match="every batch size"):
        ResultRecord.model_validate(partial)
    off = execute_run(validate_run_config({**config, "latency": {"enabled": False}}), resume=False)
    assert off.latency is None and off.run_id == record["run_id"]
