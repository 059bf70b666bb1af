"""DDP ranks agree on the pruned model after finalize, or the run fails naming the layer.

Two real processes in a gloo process group (torch.multiprocessing, as DDP runs them): the
digest comparison on its own, then a whole run whose finalize differs on rank 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from prunebench.core.device import Worker
from prunebench.core.errors import RunFailed
from prunebench.core.metrics import prunable_modules
from prunebench.harness.agreement import check_agreement
from prunebench.harness.lifecycle import execute_run
from prunebench.harness.validation import validate_run_config
from prunebench.methods.global_magnitude import GlobalMagnitude

pytestmark = pytest.mark.slow  # DDP runs over gloo: not in `make test-fast`

WORLD = 2
METHOD_FINALIZE = GlobalMagnitude.finalize


def outcome(call) -> str:
    """'agreed', or the RunFailed message."""
    try:
        call()
    except RunFailed as exc:
        return str(exc)
    return "agreed"


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


def run_config(directory: Path):
    return validate_run_config({
        "experiment": "agree",
        "model": {"name": "lenet_300_100"},
        "data": {"name": "digits", "layout": "flat", "batch_size": 64},
        "method": {"name": "global", "hparams": {"schedule": "one_shot"}},
        "phases": {"dense": 0, "prune": 1, "finetune": 1},
        "target_compression": 4.0,
        "threads": 1,
        "output_dir": str(directory),
    })  # fmt: skip


def revive_one_weight(self: GlobalMagnitude, model: nn.Module) -> nn.Module:
    """Rank 1's finalize: the method's own, then one pruned weight of the second layer (LeNet's
    `3`, 300 -> 100) revived."""
    model = METHOD_FINALIZE(self, model)
    weight = prunable_modules(model)[1][1].weight
    with torch.no_grad():
        weight.view(-1)[(weight.view(-1) == 0).nonzero()[0]] = 0.5
    return model


def rank_main(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    worker = Worker(rank, 0, WORLD)
    seen = {"same": outcome(lambda: check_agreement(small_model(), worker))}
    model = small_model()
    if rank == 1:
        with torch.no_grad():
            model[2].weight[1, 3] = 0.0  # a mask that differs in layer "2" only
            model[4].weight[0, 0] = 0.0  # and a later layer: the first difference is named
    seen["mask"] = outcome(lambda: check_agreement(model, worker))
    fewer = small_model()
    if rank == 1:
        fewer[2] = nn.Linear(5, 3)  # a kept-channel count that differs, same mask of nonzeros
        fewer[4] = nn.Linear(3, 3)
    seen["channels"] = outcome(lambda: check_agreement(fewer, worker))
    config = run_config(Path(out) / "runs")
    if rank == 1:
        GlobalMagnitude.finalize = revive_one_weight  # this process only
    record = execute_run(config, worker, resume=False)
    seen["record"] = record.model_dump(mode="json") if record is not None else None
    Path(out, f"rank{rank}.json").write_text(json.dumps(seen))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("agree")
    mp.start_processes(rank_main, args=(str(out / "store"), str(out)), nprocs=WORLD, start_method="spawn", join=True)
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(WORLD)]


def test_ranks_with_the_same_model_agree(ranks: list[dict]) -> None:
    assert [seen["same"] for seen in ranks] == ["agreed", "agreed"]


def test_a_mask_that_differs_on_one_rank_names_the_first_layer_on_every_rank(ranks: list[dict]) -> None:
    expected = "DDP ranks disagree after finalize: layer 2: rank 1 holds other masks or kept channels than rank 0"
    assert [seen["mask"] for seen in ranks] == [expected, expected]


def test_kept_channels_that_differ_are_a_disagreement(ranks: list[dict]) -> None:
    assert all(seen["channels"].startswith("DDP ranks disagree after finalize: layer 2: rank 1") for seen in ranks)


def test_a_run_whose_finalize_differs_on_one_rank_fails_naming_the_layer(ranks: list[dict]) -> None:
    chief, other = ranks
    assert other["record"] is None, "only rank 0 writes the record"
    record = chief["record"]
    assert record["status"] == "failed"
    assert record["error"] == "DDP ranks disagree after finalize: layer 3: rank 1 holds other masks or kept channels than rank 0"
    assert [entry["phase"] for entry in record["trail"]] == ["prune"], "the run stopped when it entered fine-tuning"
