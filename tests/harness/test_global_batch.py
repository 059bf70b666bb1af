"""`data.batch_size` is the global batch, as the papers print it: a run's DDP workers share it."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import torch
from support.cli import REPO
from torch.utils.data import TensorDataset

from prunebench.cluster.grid import GridExpansion, load_grid
from prunebench.core.errors import UserError
from prunebench.harness.config import DataConfig
from prunebench.harness.datasets import Splits, make_loaders
from prunebench.harness.validation import load_run_config

# The batch each paper states for its protocol (global, over all its GPUs); LTP's ImageNet
# networks other than its Sec. 4 text are torchvision's recipe (256), as the configs say.
PAPER_BATCH = {
    "configs/imagenet/psp/*.yaml": 256,  # PSP Sec. 4: 256 on 8 GPUs
    "configs/imagenet/ot/*.yaml": 256,  # OT Sec. IV-B
    "configs/imagenet/dt/alexnet-*.yaml": 128,  # DT Sec. 4.2.2
    "configs/imagenet/ltp/*.yaml": 256,  # LTP ResNet-50 (and the other ImageNet networks: torchvision's recipe)
    "configs/cifar/psp/*.yaml": 64,  # PSP Sec. 4.2
    "configs/cifar/ot/*.yaml": 64,  # OT Sec. IV-D
    "configs/cifar/dt/*.yaml": 128,  # DT Sec. 4.2.1
    "configs/cifar/ltp/*.yaml": 128,  # the CIFAR ResNet recipe LTP fine-tunes from
    "configs/mnist/dt/*.yaml": 100,  # DT Sec. 4.2.1: batch 100
}
PAPER_CONFIGS = sorted(
    str(path.relative_to(REPO)) for family in ("mnist", "cifar", "imagenet") for path in (REPO / "configs" / family).glob("*/*.yaml")
    if path.parent.name != "benchmark"
)  # fmt: skip


@pytest.mark.parametrize("config", PAPER_CONFIGS)
def test_every_paper_config_states_the_papers_global_batch(config: str) -> None:
    expected = [batch for pattern, batch in PAPER_BATCH.items() if fnmatch.fnmatch(config, pattern)]
    assert len(expected) == 1, f"{config}: no (or more than one) paper batch known for it"
    assert load_run_config(REPO / config).data.batch_size == expected[0]


def _splits(examples: int) -> Splits:
    data = TensorDataset(torch.zeros(examples, 3, 4, 4), torch.zeros(examples, dtype=torch.long))
    return Splits(train=data, val=data, test=data, num_classes=2, in_channels=3, image_size=4)


def test_the_workers_share_the_global_batch() -> None:
    config = DataConfig(name="digits", batch_size=64)
    shares = [make_loaders(_splits(512), config, seed=0, rank=rank, world_size=4).train for rank in range(4)]
    assert [len(next(iter(loader))[0]) for loader in shares] == [16, 16, 16, 16]  # 4 x 16 = 64 per optimizer step
    assert [len(loader) for loader in shares] == [8] * 4  # 512 examples / 64 a step
    alone = make_loaders(_splits(512), config, seed=0).train
    assert len(next(iter(alone))[0]) == 64 and len(alone) == 8


def test_a_global_batch_the_workers_cannot_share_is_refused() -> None:
    with pytest.raises(UserError, match=r"^data.batch_size: the global batch 100 is not divisible by the run's 8 workers$"):
        make_loaders(_splits(800), DataConfig(name="digits", batch_size=100), seed=0, rank=0, world_size=8)


REPRODUCE_GRIDS = sorted((REPO / "configs" / "grids" / "reproduce").glob("*.yaml"))


@pytest.mark.parametrize("grid", REPRODUCE_GRIDS, ids=[path.stem for path in REPRODUCE_GRIDS])
def test_every_reproduction_grid_runs_at_its_protocols_global_batch(grid: Path) -> None:
    spec = load_grid(grid)
    for run in GridExpansion(spec, str(grid)).runs():
        protocol = load_run_config(REPO / spec.method_config.format(model=run.config.model.name, method=run.config.method.name))
        assert run.config.data.batch_size == protocol.data.batch_size, run.describe()
        assert run.config.data.batch_size % spec.cluster.workers_per_run == 0, run.describe()
