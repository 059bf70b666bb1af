"""CIFAR-10 / CIFAR-100 in their python format, read here rather than by torchvision: the
batches are pickles, and torchvision would `pickle.load` them, running whatever a crafted
batch names. core.safe_pickle reads them as data only; the images and labels are checked
before a run uses them."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch.utils.data import Dataset

from prunebench.core.errors import UserError, first_line
from prunebench.core.safe_pickle import load_data_pickle

SIDE, CHANNELS = 32, 3


@dataclass(frozen=True)
class CifarFormat:
    """Where a CIFAR release keeps its batches, and the key of its labels."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    labels_key: str
    num_classes: int
    archive: str  # torchvision's class holding the download address and checksum

    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files


CIFAR10 = CifarFormat("CIFAR10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels", 10, "CIFAR10")
CIFAR100 = CifarFormat("CIFAR100", "cifar-100-python", ("train",), ("test",), "fine_labels", 100, "CIFAR100")


class CifarImages(Dataset):
    """(transformed image, label) of HWC uint8 images, given to the transform as PIL images
    (as torchvision's CIFAR datasets give them)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[object, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def read_batches(folder: Path, names: tuple[str, ...], spec: CifarFormat) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 32, 32, 3) and labels of the named batch files, each checked."""
    images, labels = zip(*(read_batch(folder / name, spec) for name in names))
    return np.concatenate(images), np.concatenate(labels)


def read_batch(path: Path, spec: CifarFormat) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as stream:
            entry = load_data_pickle(stream)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise UserError(f"data.root: {path} is not a readable {spec.name} batch file ({first_line(exc, 'corrupt or truncated')})") from None
    except OSError as exc:
        raise UserError(f"data.root: cannot read {path}: {exc.strerror or first_line(exc)}") from None
    return _checked(entry, path, spec)


def _checked(entry: object, path: Path, spec: CifarFormat) -> tuple[np.ndarray, np.ndarray]:
    def bad(what: str) -> UserError:
        return UserError(f"data.root: {path} is not a {spec.name} batch file ({what})")

    if not isinstance(entry, dict):
        raise bad("not a mapping")
    data = entry.get("data")
    labels = entry.get(spec.labels_key, entry.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CHANNELS * SIDE * SIDE:
        raise bad("data: expected uint8 rows of 3x32x32 pixels")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise bad(f"{spec.labels_key}: expected one label per image")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or (len(labels) and not (0 <= labels.min() and labels.max() < spec.num_classes)):
        raise bad(f"{spec.labels_key}: expected integers in [0, {spec.num_classes})")
    return data.reshape(-1, CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1), labels.astype(np.int64)


def download(root: Path, spec: CifarFormat) -> None:
    """Fetch and unpack the release archive (torchvision's address and checksum; no unpickling)."""
    import torchvision
    from torchvision.datasets.utils import download_and_extract_archive

    release = getattr(torchvision.datasets, spec.archive)
    download_and_extract_archive(release.url, str(root), filename=release.filename, md5=release.tgz_md5)
