"""The foundation's end-to-end bars: dense reaches 0.90 on digits; global reaches its target."""

import pytest

from prunebench.core.record import REQUIRED_KEYS

pytestmark = pytest.mark.slow  # the smoke configs' full runs: not in `make test-fast`


def test_dense_smoke_reaches_090_test_top1(smoke_results):
    record = smoke_results("dense")
    assert record["status"] == "finished"
    assert record["top1"] >= 0.90, record["top1"]
    assert record["density"] == 1.0 and record["macs"] == record["macs_dense"]


def test_global_smoke_record_is_complete_and_hits_its_target(smoke_results):
    record = smoke_results("global")
    assert set(REQUIRED_KEYS) <= set(record)
    assert record["status"] == "finished" and record["error"] is None
    assert record["compression_rate"] == pytest.approx(record["target_compression"], rel=0.05)
    assert record["density"] == pytest.approx(record["prunable_nonzero"] / record["prunable_params"])
    assert record["flops"] == 2 * record["macs"]
    # pruned weights cost nothing: MACs fall with them (by less than the weight compression,
    # because global magnitude prunes the late layers, which have few MACs per weight, hardest)
    assert record["macs"] < record["macs_dense"]
    assert record["macs_dense"] / record["macs"] > 1.5
    assert len(record["trail"]) == record["epochs"] == sum(record["phases"].values())
    assert record["epochs_to_sparsity"] is not None and record["epochs_to_sparsity"] <= record["epochs"]
    assert record["environment"]["world_size"] == 1
    speed = record["latency"]  # measured against the dense architecture, at batch 1 and 64
    assert speed["batch_sizes"] == [1, 64] and all(speed["speedup"][batch] > 0 for batch in ("1", "64"))
    for key in ("density", "top1", "top5"):
        assert 0 <= record[key] <= 1
