"""Tiny data sets in their real on-disk formats, so the real loaders are exercised offline."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _batch(rng: np.random.Generator, count: int, classes: int, labels: str = "labels") -> dict:
    """One python-format batch: `count` random 32x32x3 images as rows of 3072 bytes, and labels."""
    return {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), labels: [int(x) for x in rng.integers(0, classes, count)]}


def make_cifar10(root: Path, per_batch: int = 12, test_size: int = 20, seed: int = 0) -> Path:
    """A CIFAR-10 python-format tree (data_batch_1..5, test_batch, batches.meta) under root."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(count: int) -> dict:
        return _batch(rng, count, 10)

    for index in range(1, 6):
        (folder / f"data_batch_{index}").write_bytes(pickle.dumps(batch(per_batch)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(test_size)))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    return root


def make_cifar100(root: Path, train_size: int = 60, test_size: int = 20, seed: int = 0) -> Path:
    """A CIFAR-100 python-format tree (train, test, meta; fine labels) under root."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", train_size), ("test", test_size)):
        (folder / name).write_bytes(pickle.dumps(_batch(rng, count, 100, labels="fine_labels")))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"class{i}" for i in range(100)]}))
    return root
