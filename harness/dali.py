"""NVIDIA DALI loaders for ImageFolder trees (`data.loader: dali`).

They serve the same examples as the torchvision path in `harness.datasets`: the same sorted
file list and class indices as torchvision's ImageFolder, the same held-out val split
(`holdout_indices`), test = the val/ folder, and the same ImageNet recipe. Only the engine
differs: DALI decodes JPEGs on the GPU (nvJPEG, `mixed`) where the worker has one, else on
the CPU. Under DDP every rank reads its own shard.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import torch

from prunebench.core.device import DevicePlan, Worker
from prunebench.core.errors import RunFailed, UserError
from prunebench.harness.config import DataConfig
from prunebench.harness.datasets import IMAGENET_MEAN, IMAGENET_STD, Loaders, holdout_indices, imagefolder_dirs, worker_batch

try:
    from nvidia.dali import Pipeline, fn, types
    from nvidia.dali.data_node import DataNode
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy
    from nvidia.dali.plugin.pytorch import DALIGenericIterator
except ImportError as exc:  # pragma: no cover - the package is a project dependency
    raise UserError(f"data.loader: dali needs NVIDIA DALI (pip install nvidia-dali-cuda120): {exc}") from None

READER = "reader"  # the file reader's name; the iterator reads shard sizes from it
FileList = tuple[list[str], list[int]]


# --- which files, which labels ---------------------------------------------------------------


def imagefolder_files(directory: Path) -> tuple[list[str], list[int], list[str]]:
    """(files, labels, classes) in torchvision ImageFolder's order, by its own listing
    functions, so that `holdout_indices` picks the same examples on both paths."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    expected = f"(expected {directory}/CLASS/*.JPEG)"
    try:
        classes, class_to_idx = find_classes(directory)
        samples = make_dataset(directory, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    except FileNotFoundError:  # no class folders
        raise UserError(f"data.root: {directory} holds no images {expected}") from None
    except OSError as exc:
        raise UserError(f"data.root: cannot list {directory}: {exc.strerror or exc}") from None
    if not samples:
        raise UserError(f"data.root: {directory} holds no images {expected}")
    empty = sorted(set(classes) - {classes[label] for _, label in samples})
    if empty:
        raise UserError(f"data.root: {directory / empty[0]} holds no images (every class folder needs at least one)")
    return [path for path, _ in samples], [label for _, label in samples], classes


def split_files(config: DataConfig) -> dict[str, FileList]:
    """train / val / test file lists: val held out from train/ exactly as `datasets.imagenet` does."""
    train_dir, val_dir = imagefolder_dirs(config)
    files, labels, classes = imagefolder_files(train_dir)
    test_files, test_labels, test_classes = imagefolder_files(val_dir)
    if classes != test_classes:
        raise UserError(f"data.root: {train_dir} and {val_dir} have different class folders")
    fit_idx, val_idx = holdout_indices(len(files), config.val_fraction)
    return {
        "train": ([files[i] for i in fit_idx], [labels[i] for i in fit_idx]),
        "val": ([files[i] for i in val_idx], [labels[i] for i in val_idx]),
        "test": (test_files, test_labels),
    }


# --- the pipeline ----------------------------------------------------------------------------


def decoder_device(plan: DevicePlan) -> str:
    """DALI backend of the JPEG decoder: "mixed" (nvJPEG, output on the GPU) or "cpu".
    The choice is the device plan's; this is the one place the pipeline reads it."""
    if plan.dali_decoder not in ("mixed", "cpu"):
        raise ValueError(f"unknown DALI decoder {plan.dali_decoder!r}")
    return plan.dali_decoder


def define_graph(
    files: list[str],
    labels: list[int],
    *,
    training: bool,
    image_size: int,
    decoder: str,
    shard_id: int = 0,
    num_shards: int = 1,
    shuffle_seed: int = 0,
) -> tuple[DataNode, DataNode]:
    """The operators, inside a `with pipeline:` block: read this shard, decode, augment or
    resize, normalise. Returns (images float32 CHW, labels int32 of shape (1,)).

    Training reshuffles the whole file list every epoch with `shuffle_seed` (the same on all
    ranks, so shards stay disjoint); the random crops and flips draw from the pipeline's seed.
    Evaluation keeps each rank on its own shard. Both pad the shard's last batch with repeats
    of its last file, which keeps reader and iterator epochs aligned; the iterator drops them.
    """
    shuffle = {"shuffle_after_epoch": True, "shuffle_after_epoch_seed": shuffle_seed} if training else {}
    jpegs, label = fn.readers.file(
        name=READER,
        files=files,
        labels=labels,
        shard_id=shard_id,
        num_shards=num_shards,
        stick_to_shard=not training,
        pad_last_batch=True,
        **shuffle,
    )
    images = fn.decoders.image(jpegs, device=decoder, output_type=types.RGB)
    normalize = {"dtype": types.FLOAT, "output_layout": "CHW", "mean": [255 * m for m in IMAGENET_MEAN], "std": [255 * s for s in IMAGENET_STD]}
    if training:
        images = fn.random_resized_crop(images, size=(image_size, image_size))
        images = fn.crop_mirror_normalize(images, mirror=fn.random.coin_flip(probability=0.5), **normalize)
    else:
        images = fn.resize(images, resize_shorter=round(image_size * 256 / 224))
        images = fn.crop_mirror_normalize(images, crop=(image_size, image_size), **normalize)
    return images, label


def build_pipeline(
    files: list[str],
    labels: list[int],
    *,
    training: bool,
    image_size: int,
    batch_size: int,
    plan: DevicePlan,
    shard_id: int = 0,
    num_shards: int = 1,
    num_threads: int = 1,
    seed: int = 0,
    shuffle_seed: int = 0,
) -> Pipeline:
    """One rank's pipeline, defined but not built (the iterator builds it). Without a GPU it
    runs with device_id=None and CPU operators only."""
    decoder = decoder_device(plan)
    device_id = plan.dali_device_id if decoder == "mixed" else None
    pipe = Pipeline(batch_size=batch_size, num_threads=num_threads, device_id=device_id, seed=seed)
    with pipe:
        pipe.set_outputs(*define_graph(
            files, labels, training=training, image_size=image_size, decoder=decoder,
            shard_id=shard_id, num_shards=num_shards, shuffle_seed=shuffle_seed,
        ))  # fmt: skip
    return pipe


def shard_range(count: int, shard_id: int, num_shards: int) -> range:
    """Indices of the files that DALI's reader assigns to a shard (contiguous, sizes differ by at most 1)."""
    return range(count * shard_id // num_shards, count * (shard_id + 1) // num_shards)


# --- the loader ------------------------------------------------------------------------------


class DALILoader:
    """A DALI iterator that looks like a DataLoader to the training loop: `len()` is batches
    per epoch, each `iter()` is one epoch of (images float32 NCHW, labels int64).

    `files` are the files this rank reads in an epoch: its shard for evaluation, the whole
    split for training (the shards move with every reshuffle). They size the evaluation epoch
    and are the suspects when decoding fails.
    """

    def __init__(self, pipe: Pipeline, training: bool, files: list[str]) -> None:
        self.training, self.files, self.batch_size = training, files, pipe.max_batch_size
        policy = LastBatchPolicy.DROP if training else LastBatchPolicy.PARTIAL
        self.iterator = DALIGenericIterator(
            [pipe], ["images", "labels"], reader_name=READER, last_batch_policy=policy, auto_reset=True, prepare_first_batch=False
        )

    def __len__(self) -> int:
        if self.training:
            return len(self.iterator)
        return -(-len(self.files) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        done = 0
        while True:
            try:
                (batch,) = next(self.iterator)
            except StopIteration:  # auto_reset has already rewound to the next epoch
                return
            except RuntimeError as exc:
                raise RunFailed(self._failure(exc, done)) from None
            labels = batch["labels"].view(-1).long()
            if len(labels) == 0:
                # DALI runs every shard for as many batches as the largest one has; a smaller
                # shard ends with an empty batch under LastBatchPolicy.PARTIAL.
                continue
            done += 1
            yield batch["images"], labels

    def _failure(self, exc: RuntimeError, batches_done: int) -> str:
        """One line for the failed record, naming the broken file where it can be found."""
        reason = dali_reason(exc)
        start = 0 if self.training else min(batches_done * self.batch_size, len(self.files))
        broken = find_unreadable(self.files[start:] + self.files[:start])
        if broken:
            return f"data: cannot decode {broken} (DALI: {reason})"
        return f"data: DALI pipeline failed ({reason}); no single unreadable file found"


def dali_reason(exc: Exception) -> str:
    """The line of a DALI error that says what went wrong: the one after "encountered:"
    (the lines before it are the pipeline's traceback), else the first."""
    text = str(exc).split("encountered:", 1)[-1]
    return next((line.strip() for line in text.splitlines() if line.strip()), exc.__class__.__name__)


def find_unreadable(files: list[str], budget_s: float = 30.0) -> str | None:
    """The first file that PIL cannot open and decode, searching for at most `budget_s` seconds."""
    from PIL import Image

    deadline = time.monotonic() + budget_s
    for path in files:
        if time.monotonic() > deadline:
            return None
        try:
            with Image.open(path) as image:
                image.convert("RGB")
        except Exception:  # noqa: BLE001 - any failure is what we are looking for
            return path
    return None


def make_dali_loaders(config: DataConfig, plan: DevicePlan, seed: int, worker: Worker) -> Loaders:
    """train / val / test loaders for this rank: the DALI twin of `datasets.make_loaders`."""
    if config.name != "imagenet":
        raise UserError(f"data.loader: dali reads ImageFolder trees (data.name: imagenet), not {config.name!r}")
    splits = split_files(config)
    for name, (files, _) in splits.items():
        if len(files) < worker.world_size:
            raise UserError(f"data.root: the {name} split has {len(files)} images, fewer than the {worker.world_size} workers")
    # DDP needs the same number of training steps on every rank, so the training shards must
    # be equal: leave out the last (count mod world_size) files, at most world_size - 1.
    files, labels = splits["train"]
    keep = len(files) - len(files) % worker.world_size
    splits["train"] = (files[:keep], labels[:keep])

    def loader(split: str, training: bool) -> DALILoader:
        files, labels = splits[split]
        pipe = build_pipeline(
            files,
            labels,
            training=training,
            image_size=config.image_size,
            batch_size=worker_batch(config.batch_size, worker.world_size) if training else config.eval_batch_size,
            plan=plan,
            shard_id=worker.rank,
            num_shards=worker.world_size,
            num_threads=max(1, config.num_workers),
            seed=seed + worker.rank,  # different crops and flips on each rank
            shuffle_seed=seed,  # the same global order on every rank
        )
        reads = files if training else [files[i] for i in shard_range(len(files), worker.rank, worker.world_size)]
        return DALILoader(pipe, training, reads)

    return Loaders(train=loader("train", True), val=loader("val", False), test=loader("test", False))
