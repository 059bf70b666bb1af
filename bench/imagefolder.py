"""A tiny ImageFolder JPEG tree (train/CLASS/*.jpg, val/CLASS/*.jpg), so the real ImageNet
loaders (torchvision's ImageFolder and DALI's file reader) run offline on real JPEG files: the
data of the loading benchmarks, and of the tests (which may import bench; bench never imports
tests). Not part of the engine: no run reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_imagefolder(
    root: Path, classes: int = 3, per_class_train: int = 8, per_class_val: int = 4, size: tuple[int, int] = (64, 48), seed: int = 0
) -> Path:
    """Write root/train/classI/*.jpg and root/val/classI/*.jpg and return root.

    `size` is (width, height), as PIL counts. Each class has its own colour and stripe
    direction plus noise, so a model can learn something and images are all distinct.
    With ten or more classes the folder names ("class10" < "class2") check that class
    indices follow sorted folder names.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width]
    for split, count in (("train", per_class_train), ("val", per_class_val)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            colour = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 31 + 160) % 256], dtype=np.float32)
            stripes = ((cols if label % 2 else rows) // 4 % 2).astype(np.float32)[..., None] * 60.0
            for index in range(count):
                noise = rng.normal(0.0, 20.0, (height, width, 3))
                pixels = np.clip(colour * 0.8 + stripes + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "RGB").save(folder / f"{split}_{label}_{index:03d}.jpg", quality=90)
    return root
