"""DALI loaders on a generated ImageFolder JPEG tree, with real DALI pipelines on the CPU: they
serve what the torchvision path serves, shard without overlap or padding duplicates, pick GPU
decoding from the device plan, and fail with messages a user can act on."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from support.cli import run_cli
from nvidia.dali import Pipeline

from prunebench.core.device import Worker, plan_device
from prunebench.core.errors import UserError
from prunebench.harness.config import DataConfig
from prunebench.harness.dali import DALILoader, build_pipeline, decoder_device, define_graph, imagefolder_files, make_dali_loaders, split_files
from prunebench.harness.datasets import build_splits, make_loaders
from prunebench.harness.lifecycle import execute_run
from bench.imagefolder import make_imagefolder
from prunebench.harness.validation import validate_run_config

pytestmark = pytest.mark.slow  # DALI pipelines and runs through them: not in `make test-fast`

CPU = plan_device(cuda_available=False)
CUDA = plan_device(cuda_available=True, bf16_supported=True)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 7 train images (19 train + 2 held out: odd on purpose) and 3 x 3 val images."""
    return make_imagefolder(tmp_path_factory.mktemp("imagefolder"), classes=3, per_class_train=7, per_class_val=3)


def data_config(root: Path, **overrides) -> DataConfig:
    fields = {"name": "imagenet", "root": str(root), "image_size": 32, "batch_size": 4, "eval_batch_size": 5, "loader": "dali"}
    return DataConfig(**{**fields, **overrides})


def epoch(loader) -> tuple[list[torch.Tensor], list[int]]:
    images, labels = [], []
    for x, y in loader:
        assert x.dtype == torch.float32 and x.dim() == 4 and x.shape[1] == 3
        assert y.dtype == torch.int64 and y.dim() == 1 and len(y) == len(x)
        images.append(x)
        labels += y.tolist()
    return images, labels


def test_serves_what_the_torchvision_loader_serves(tree: Path) -> None:
    config = data_config(tree)
    reference = make_loaders(build_splits(config), config, seed=0)
    dali = make_dali_loaders(config, CPU, seed=0, worker=Worker())
    for split in ("train", "val", "test"):
        ref_images, ref_labels = epoch(getattr(reference, split))
        images, labels = epoch(getattr(dali, split))
        assert len(getattr(dali, split)) == len(getattr(reference, split)) == len(images), split
        assert [x.shape for x in images] == [x.shape for x in ref_images], split
        if split == "train":  # shuffled, last partial batch dropped: same number of batches, labels from the same set
            assert len(labels) == len(ref_labels) and set(labels) <= {0, 1, 2}
            continue
        assert labels == ref_labels, split  # same files in the same order
        # Same decoding, resize, crop, channel order and normalisation, up to resampling details.
        means, ref_means = torch.cat(images).mean((2, 3)), torch.cat(ref_images).mean((2, 3))
        assert torch.allclose(means, ref_means, atol=0.1), (means - ref_means).abs().max()


def test_split_matches_imagefolder_and_holdout(tree: Path) -> None:
    from torchvision.datasets import ImageFolder

    config = data_config(tree)
    splits = build_splits(config)
    files = split_files(config)
    for split in ("train", "val", "test"):
        subset = getattr(splits, split)
        samples = [subset.dataset.samples[i] for i in subset.indices] if split != "test" else subset.samples
        assert list(zip(*files[split])) == samples, split
    assert ImageFolder(str(tree / "train")).classes == ["class0", "class1", "class2"]


def test_eval_shards_cover_each_file_exactly_once(tree: Path) -> None:
    """Labels set to file indices identify files: two evaluation shards (9 files, batch 2, so
    both shards end on a partial batch) see every file once, epoch after epoch."""
    files, _, _ = imagefolder_files(tree / "val")
    ids = list(range(len(files)))
    loaders = [
        DALILoader(
            build_pipeline(files, ids, training=False, image_size=32, batch_size=2, plan=CPU, shard_id=rank, num_shards=2),
            training=False, files=files[4 * rank: 4 + 5 * rank],
        )
        for rank in (0, 1)
    ]  # fmt: skip
    assert [len(loader) for loader in loaders] == [2, 3]  # shards of 4 and 5 files, the last batch partial
    for _ in range(2):
        batches = [list(loader) for loader in loaders]
        assert [len(b) for b in batches] == [2, 3]  # DALI's trailing empty batch on the smaller shard is skipped
        seen = [int(y) for rank in batches for _, labels in rank for y in labels]
        assert sorted(seen) == ids


def test_train_shards_are_disjoint_equal_and_reshuffled(tree: Path) -> None:
    """Two training shards with different augmentation seeds: the same number of steps (DDP
    needs it), each file on exactly one rank per epoch, a new order every epoch. Through
    make_dali_loaders an odd training split still gives both ranks the same step count, and
    the two ranks' evaluation shards together hold the torchvision splits' labels."""
    files, _, _ = imagefolder_files(tree / "train")
    files = files[:20]
    ids = list(range(len(files)))
    ranks = [
        DALILoader(
            build_pipeline(files, ids, training=True, image_size=32, batch_size=5, plan=CPU, shard_id=rank, num_shards=2,
                           seed=7 + rank, shuffle_seed=7),
            training=True, files=files,
        )
        for rank in (0, 1)
    ]  # fmt: skip
    assert [len(loader) for loader in ranks] == [2, 2]
    orders = []
    for _ in range(2):
        seen = [epoch(loader)[1] for loader in ranks]
        assert sorted(seen[0] + seen[1]) == ids  # 20 files, 2 x 2 batches of 5: each file once
        orders.append(seen[0] + seen[1])
    assert orders[0] != orders[1]

    # Through make_dali_loaders: 19 training files -> 18, 9 per rank, the same step count; the
    # global batch of 6 is 3 a rank.
    config = data_config(tree, batch_size=6)
    per_rank = [make_dali_loaders(config, CPU, seed=0, worker=Worker(rank, rank, 2)) for rank in (0, 1)]
    assert [len(loaders.train) for loaders in per_rank] == [3, 3]
    reference = build_splits(config)
    for split in ("val", "test"):
        labels = Counter(epoch(getattr(per_rank[0], split))[1] + epoch(getattr(per_rank[1], split))[1])
        assert labels == Counter(int(y) for _, y in getattr(reference, split)), split


def test_decoder_follows_the_device_plan() -> None:
    """A GPU plan decodes with nvJPEG ("mixed", outputs on the GPU), a CPU plan on the CPU with
    device_id=None. Only the graph is defined: nothing runs, no GPU is needed."""
    assert decoder_device(CUDA) == "mixed" and decoder_device(CPU) == "cpu"
    files, ids = ["a.jpg", "b.jpg"], [0, 1]
    for plan, device_id, images_on in ((CUDA, 0, "gpu"), (CPU, None, "cpu")):
        pipe = build_pipeline(files, ids, training=True, image_size=32, batch_size=2, plan=plan)
        assert pipe.device_id == device_id
        for training in (True, False):
            with Pipeline(batch_size=2, num_threads=1, device_id=device_id):
                images, labels = define_graph(files, ids, training=training, image_size=32, decoder=decoder_device(plan))
            assert (images.device, labels.device) == (images_on, "cpu")


def test_empty_directories_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "val" / "class0").mkdir(parents=True)
    with pytest.raises(UserError, match=rf"^data\.root: {tmp_path / 'train'} holds no images"):
        make_dali_loaders(data_config(tmp_path), CPU, seed=0, worker=Worker())
    make_imagefolder(tmp_path, classes=2, per_class_train=3, per_class_val=0)  # val/class0, val/class1 stay empty
    with pytest.raises(UserError, match=rf"^data\.root: {tmp_path / 'val'} holds no images"):
        make_dali_loaders(data_config(tmp_path), CPU, seed=0, worker=Worker())
    (tmp_path / "val" / "class0" / "x.jpg").write_bytes((tmp_path / "train" / "class0" / "train_0_000.jpg").read_bytes())
    with pytest.raises(UserError, match=rf"^data\.root: {tmp_path / 'val' / 'class1'} holds no images"):
        make_dali_loaders(data_config(tmp_path), CPU, seed=0, worker=Worker())


def test_corrupt_jpeg_fails_the_run_naming_the_file(tmp_path: Path) -> None:
    root = make_imagefolder(tmp_path, classes=2, per_class_train=5, per_class_val=2, size=(32, 32))
    broken = root / "train" / "class1" / "train_1_002.jpg"
    broken.write_bytes(broken.read_bytes()[:100] + b"\0" * 64)
    config = validate_run_config({
        "experiment": "t", "model": {"name": "resnet20"}, "method": {"name": "dense"}, "phases": {"dense": 1},
        "data": data_config(root, batch_size=2).model_dump(), "output_dir": str(tmp_path / "runs"),
    })  # fmt: skip
    record = execute_run(config).model_dump()
    assert not config.run_files().exists("model.pt") and record["status"] == "failed"
    assert f"cannot decode {broken}" in record["error"] and "\n" not in record["error"]


def test_cli_run_with_dali(tree: Path, tmp_path: Path) -> None:
    config = {
        "experiment": "dali", "model": {"name": "resnet18"}, "method": {"name": "dense"}, "phases": {"dense": 1},
        "data": {"name": "imagenet", "root": str(tree), "image_size": 32, "batch_size": 4, "eval_batch_size": 8},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}, "seed": 0,
        "latency": {"enabled": False},  # the speed measurement has its own tests (tests/core/test_latency.py)
    }  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("run", str(path), "--set", "data.loader=dali", "--out", str(tmp_path / "out"), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (record_path,) = (tmp_path / "out" / "dali").glob("*/result.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "finished" and record["dataset"] == "imagenet" and 0 <= record["top1"] <= 1
