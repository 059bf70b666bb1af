"""Tiny data sets in their real on-disk formats, so the real loaders are exercised offline."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def make_cifar10(root: Path, per_batch: int = 12, test_size: int = 20, seed: int = 0) -> Path:
    """A CIFAR-10 python-format tree (data_batch_1..5, test_batch, batches.meta) under root."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(count: int) -> dict:
        return {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), "labels": [int(x) for x in rng.integers(0, 10, count)]}

    for index in range(1, 6):
        (folder / f"data_batch_{index}").write_bytes(pickle.dumps(batch(per_batch)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(test_size)))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    return root
