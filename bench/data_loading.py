"""Data loading: images per second of the DALI CPU pipeline against torchvision's ImageFolder and
DataLoader, both as the harness builds them for `data.name: imagenet`.

What: the training split (train/ minus the held-out val share) of a generated ImageFolder tree of
JPEGs (2,000 images of 320x240 in 10 classes, written once into bench/results/cache/, which git
ignores), through the ImageNet training recipe (random-resized-crop to 224, horizontal flip,
normalise to float32 CHW) in batches of 64. torchvision: `harness.datasets.imagenet` (ImageFolder
with `imagenet_transforms`) and the training loader of `harness.datasets.make_loaders`, with
`--workers` worker processes; DALI: `harness.dali.build_pipeline` on the CPU (`device_id=None`,
CPU decoder) with `--workers` threads, read through `harness.dali.DALILoader`, the same files and
arguments as `make_dali_loaders` uses. Both drop the last partial batch.

Ceiling: the single-core JPEG decode rate of PIL (open + decode to RGB, no augmentation) over the
same files, in this process; times the number of workers it bounds what a decoding-bound loader
can reach on this machine.

How: one epoch of each loader and one pass of PIL decoding per round, in a shuffled order, after
one untimed warm-up round (worker start-up, pipeline build); images per second per round, DALI /
torchvision paired round by round; median and inter-quartile range. Goal: DALI at least 1.5x
torchvision on CPU. DALI starts preparing the next epoch's first batches (its prefetch queue) as
soon as an epoch ends; an untimed pause after every epoch keeps that work out of the other cases'
timings, and those images are not counted in DALI's timed epochs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable

import torch
from PIL import Image

from bench.common import CACHE_DIR, goal_cell, interleave, machine_caption, print_table, read_result, show, spread, write_result
from prunebench.core.device import plan_device
from prunebench.harness.config import DataConfig
from prunebench.harness.dali import DALILoader, build_pipeline, split_files
from prunebench.harness.datasets import build_splits, make_loaders
from bench.imagefolder import make_imagefolder

NAME = "data_loading"
GOAL = 1.5  # DALI images/s over torchvision images/s
CLASSES, PER_CLASS, SIZE = 10, 200, (320, 240)  # (width, height), as PIL counts
IMAGE_SIZE, BATCH_SIZE = 224, 64
PAUSE_S = 1.0  # untimed, after every epoch: DALI's prefetch of the next epoch ends before anything else is timed


def jpeg_tree() -> Path:
    """The generated ImageFolder tree, written on first use (about 30 s on 2 cores)."""
    root = CACHE_DIR / f"imagefolder-{CLASSES * PER_CLASS}-{SIZE[0]}x{SIZE[1]}"
    done = root / ".complete"
    if not done.is_file():
        print(f"writing {CLASSES * PER_CLASS} JPEGs of {SIZE[0]}x{SIZE[1]} to {root} (once)", flush=True)
        make_imagefolder(root, classes=CLASSES, per_class_train=PER_CLASS, per_class_val=1, size=SIZE)
        done.touch()
    return root


def torchvision_loader(config: DataConfig) -> Iterable:
    return make_loaders(build_splits(config), config, seed=0).train


def dali_loader(config: DataConfig) -> tuple[Iterable, int]:
    """The loader, and how many images of the next epoch its pipeline prepares as soon as an epoch
    ends (DALI prefetches `prefetch_queue_depth` batches on reset)."""
    files, labels = split_files(config)["train"]
    plan = plan_device(cuda_available=False)  # the CPU pipeline, also on a GPU machine
    pipe = build_pipeline(files, labels, training=True, image_size=config.image_size, batch_size=config.batch_size, plan=plan,
                          num_threads=config.num_workers, seed=0)  # fmt: skip
    return DALILoader(pipe, True, files), pipe.prefetch_queue_depth * config.batch_size


def epoch(loader: Iterable) -> int:
    """Images served by one pass over the loader."""
    return sum(len(labels) for _, labels in loader)


def pil_decode(files: list[str]) -> int:
    """Decode every file with PIL in this process (one core)."""
    for path in files:
        with Image.open(path) as image:
            image.convert("RGB")
    return len(files)


def measure(rounds: int, workers: int) -> dict[str, Any]:
    root = jpeg_tree()
    config = DataConfig(name="imagenet", root=str(root), image_size=IMAGE_SIZE, batch_size=BATCH_SIZE, num_workers=workers)
    files = split_files(config)["train"][0]
    dali, head_start = dali_loader(config)
    loaders = {"dali": dali, "torchvision": torchvision_loader(config)}
    cases = {name: lambda loader=loader: epoch(loader) for name, loader in loaders.items()}
    cases["pil"] = lambda: pil_decode(files)
    images = {name: run() for name, run in cases.items()}  # the warm-up round, counted
    images["dali"] -= head_start  # made during the pause before each timed epoch
    timings = interleave(cases, rounds, warmup=0, pause=PAUSE_S)
    rates = {name: [images[name] / seconds for seconds in timings.wall[name]] for name in cases}
    speedup = spread([dali / torchvision for dali, torchvision in zip(rates["dali"], rates["torchvision"])])
    return {
        "images": images,
        "image_source": f"{SIZE[0]}x{SIZE[1]} JPEG",
        "image_size": IMAGE_SIZE,
        "batch_size": BATCH_SIZE,
        "workers": workers,
        "rounds": rounds,
        "images_per_s": {name: spread(values) for name, values in rates.items() if name != "pil"},
        "dali_vs_torchvision": speedup,
        "goal": GOAL,
        "goal_met": speedup.median >= GOAL,
        "pil_decode_per_core": spread(rates["pil"]),
    }


def render(record: dict[str, Any]) -> None:
    workers, ceiling = record["workers"], record["pil_decode_per_core"]["median"]
    rates = record["images_per_s"]
    rows = [
        ["torchvision ImageFolder + DataLoader", f"{workers} worker processes", show(rates["torchvision"], "", 0),
         f"{rates['torchvision']['median'] / (ceiling * workers):.0%}", "1.00x", None, None],
        ["DALI CPU pipeline", f"{workers} threads", show(rates["dali"], "", 0), f"{rates['dali']['median'] / (ceiling * workers):.0%}",
         show(record["dali_vs_torchvision"]), f">= {record['goal']:.1f}x", goal_cell(record["goal_met"])],
        ["ceiling: PIL decode only", f"1 core (x {workers} = {ceiling * workers:.0f})", show(record["pil_decode_per_core"], "", 0),
         None, None, None, None],
    ]  # fmt: skip
    title = (f"Data loading: {record['image_source']} -> random-resized-crop {record['image_size']} + flip + normalise, "
             f"batch {record['batch_size']}, {record['rounds']} epochs each")  # fmt: skip
    columns = ["loader", "parallelism", "images/s [IQR]", "of ceiling", "vs torchvision", "goal", "met"]
    print_table(title, columns, rows, machine_caption(record))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.data_loading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each loader")
    parser.add_argument("--workers", type=int, default=torch.get_num_threads(), help="DALI threads = DataLoader worker processes")
    args = parser.parse_args(argv)
    write_result(NAME, measure(args.rounds, args.workers))
    render(read_result(NAME))


if __name__ == "__main__":
    main()
