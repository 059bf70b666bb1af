"""Issue 3's bar on digits: every method's smoke config finishes and prunes, keeping test
top-1 within 3 points of the dense smoke row. Unstructured methods reach at least 2x
compression, structured ones at least 1.5x fewer MACs."""

import pytest

from prunebench import methods

pytestmark = pytest.mark.slow  # the smoke configs' full runs: not in `make test-fast`

THRESHOLD_METHODS = ["ltp", "dt", "psp", "ns", "ot"]
CHANNEL_REMOVING = {"ns", "ot"}  # psp's smoke config prunes columns: zeros, not smaller layers


@pytest.mark.parametrize("name", THRESHOLD_METHODS)
def test_smoke_config_prunes_and_keeps_accuracy(smoke_results, name):
    dense = smoke_results("dense")
    record = smoke_results(name)
    assert record["status"] == "finished", record["error"]
    assert record["granularity"] == methods.get(name).granularity
    if record["granularity"] == "structured":
        assert record["macs_dense"] / record["macs"] >= 1.5, record["macs"]
    else:
        assert record["compression_rate"] >= 2.0, record["compression_rate"]
    if name in CHANNEL_REMOVING:
        assert record["params"] < record["params_dense"]  # channels physically removed
    assert record["top1"] >= dense["top1"] - 0.03, (record["top1"], dense["top1"])
    assert len(record["trail"]) == record["epochs"]
    # both compressions: of prunable weights, and of all parameters (biases and BN are not pruned)
    assert record["compression_all"] == pytest.approx(record["params_dense"] / record["params_nonzero"])
    if record["granularity"] == "unstructured":
        assert 1.0 < record["compression_all"] < record["compression_rate"]
    assert record["global_batch"] == record["config"]["data"]["batch_size"]
