"""`make gpu-check`: what only a machine with a CUDA GPU can show, in one run of a few minutes.

What, on the device plan's GPU path (core.device.plan_device):
- ddp: NCCL DistributedDataParallel over every visible GPU (world size 1 is fine): ResNet-20
  training steps on random 32x32 batches, one process per GPU started as torchrun would
  (torch.multiprocessing, TCP rendezvous on 127.0.0.1); checks that the replicas' weights stay
  identical and reports steps/s.
- dali: DALI's `mixed` decoding (nvJPEG) against its CPU decoder (`harness.dali.build_pipeline`,
  the training recipe at 224 px, batches of 64) over a generated ImageFolder of JPEGs
  (`bench.imagefolder.make_imagefolder`), images/s with the batch on the GPU in both cases.
- amp: a ResNet-50 training step at 224 px with mixed precision (the plan's dtype) against fp32,
  paired CUDA-event timings (core.latency.time_pairs), images/s and speedup.
- latency: core.latency.measure_latency (CUDA events) of ResNet-56 with half its MACs removed
  (Torch-Pruning, as bench/pruning_speedup.py prunes it) and of ResNet-20 with 90 % of its
  weights zeroed (global magnitude, dense format) against dense, at batch 1, 64 and 256.
Each check runs on its own (a failing one is recorded with its error, the others still run);
the figures go to bench/results/gpu_check.json. Without a CUDA GPU it says so in one line and
exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from bench.common import print_table, read_result, write_result
from prunebench.core.device import DevicePlan, plan_device
from prunebench.core.latency import clock_for, measure_latency, summary, time_pairs
from prunebench.harness import models

NAME = "gpu_check"
NO_GPU = "gpu-check: no CUDA GPU on this machine; nothing to check"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each check does: the defaults fit the 8-minute budget on one GPU; tests shrink them."""

    ddp_steps: int = 30
    ddp_batch: int = 128
    dali_images: int = 1280  # JPEGs of 320x240 in 10 classes
    dali_batch: int = 64
    dali_rounds: int = 3
    amp_model: str = "resnet50"
    amp_image: int = 224
    amp_batch: int = 64
    amp_seconds: float = 20.0
    latency_batches: tuple[int, ...] = (1, 64, 256)
    latency_seconds: float = 15.0


# --- ddp -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ddp_worker(rank: int, world_size: int, port: int, cuda: bool, sizes: Sizes, out: str) -> None:
    """One rank: DDP training steps, then whether every replica holds the same weights."""
    plan = plan_device("off", local_rank=rank, cuda_available=cuda)
    if cuda:
        torch.cuda.set_device(plan.device)
    dist.init_process_group(plan.backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        model = models.create("resnet20", 10).to(plan.device)
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(rank)  # each rank its own data, as a sampler's shard
        inputs = torch.randn(sizes.ddp_batch, 3, 32, 32, generator=generator).to(plan.device)
        labels = torch.randint(0, 10, (sizes.ddp_batch,), generator=generator).to(plan.device)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(ddp(inputs), labels).backward()
            optimizer.step()

        step()  # warm-up: buckets, NCCL communicators
        _, clock = clock_for(plan)
        seconds = clock(step, sizes.ddp_steps)
        checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
        low, high = checksum.clone(), checksum.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if rank == 0:
            result = {"backend": plan.backend, "world_size": world_size, "steps": sizes.ddp_steps, "batch_per_rank": sizes.ddp_batch,
                      "steps_per_s": 1 / seconds, "images_per_s": world_size * sizes.ddp_batch / seconds,
                      "replicas_identical": bool(low.item() == high.item())}  # fmt: skip
            Path(out).write_text(repr(result))
    finally:
        dist.destroy_process_group()


def check_ddp(plan: DevicePlan, sizes: Sizes) -> dict[str, Any]:
    """DDP over every visible GPU (one CPU process with gloo where the plan is a CPU's)."""
    import ast

    import torch.multiprocessing as mp

    cuda = plan.device.type == "cuda"
    world_size = torch.cuda.device_count() if cuda else 1
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "ddp.txt")
        mp.spawn(ddp_worker, args=(world_size, free_port(), cuda, sizes, out), nprocs=world_size, join=True)
        return ast.literal_eval(Path(out).read_text())


# --- dali ------------------------------------------------------------------------------------


def decode_rate(plan: DevicePlan, files: list[str], labels: list[int], batch_size: int, threads: int) -> float:
    """Images/s of one training epoch through DALI with the plan's decoder, the batch on the plan's device."""
    from prunebench.harness.dali import DALILoader, build_pipeline

    pipe = build_pipeline(files, labels, training=True, image_size=224, batch_size=batch_size, plan=plan, num_threads=threads)
    loader = DALILoader(pipe, training=True, files=files)
    for _ in loader:  # warm-up epoch: the pipeline builds, nvJPEG allocates
        pass
    began, images = time.perf_counter(), 0
    for batch, _ in loader:
        batch = batch.to(plan.device)
        images += len(batch)
    if plan.device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - began)


def check_dali(plan: DevicePlan, sizes: Sizes, decoders: tuple[str, ...] = ("cpu", "mixed")) -> dict[str, Any]:
    """Images/s of each decoder, alternating round by round, and mixed / CPU."""
    from prunebench.harness.dali import imagefolder_files
    from bench.imagefolder import make_imagefolder

    threads = min(8, len(os.sched_getaffinity(0)))
    rates: dict[str, list[float]] = {decoder: [] for decoder in decoders}
    with tempfile.TemporaryDirectory() as scratch:
        root = make_imagefolder(Path(scratch), classes=10, per_class_train=max(1, sizes.dali_images // 10), per_class_val=1, size=(320, 240))
        files, labels, _ = imagefolder_files(root / "train")
        for _ in range(sizes.dali_rounds):
            for decoder in decoders:
                rates[decoder].append(decode_rate(dataclasses.replace(plan, dali_decoder=decoder), files, labels, sizes.dali_batch, threads))
    result: dict[str, Any] = {"images": len(files), "threads": threads, **{f"{d}_images_per_s": summary(r) for d, r in rates.items()}}
    if "mixed" in rates and "cpu" in rates:
        result["mixed_over_cpu"] = summary([m / c for m, c in zip(rates["mixed"], rates["cpu"])])
    return result


# --- amp -------------------------------------------------------------------------------------


def training_step(plan: DevicePlan, sizes: Sizes) -> Callable[[], None]:
    """One SGD step of a fresh model (seed 0) on one fixed batch, autocast and loss scaling as the plan says."""
    torch.manual_seed(0)
    model = models.create(sizes.amp_model, 1000 if sizes.amp_model == "resnet50" else 10, 3, sizes.amp_image).to(plan.device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(plan.device.type, enabled=plan.use_grad_scaler)
    inputs = torch.randn(sizes.amp_batch, 3, sizes.amp_image, sizes.amp_image, generator=torch.Generator().manual_seed(0)).to(plan.device)
    labels = torch.zeros(sizes.amp_batch, dtype=torch.long, device=plan.device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with plan.autocast():
            loss = F.cross_entropy(model(inputs), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def check_amp(plan: DevicePlan, sizes: Sizes) -> dict[str, Any]:
    """Mixed precision against fp32 training steps, paired by the plan's clock."""
    if plan.amp_dtype is None:
        plan = plan_device("on", plan.device.index or 0, cuda_available=plan.device.type == "cuda")
    fp32 = dataclasses.replace(plan, amp_dtype=None, use_grad_scaler=False)
    label, clock = clock_for(plan)
    fp32_s, amp_s = time_pairs(training_step(fp32, sizes), training_step(plan, sizes), clock, sizes.amp_seconds)
    return {
        "model": sizes.amp_model, "image_size": sizes.amp_image, "batch": sizes.amp_batch, "amp_dtype": str(plan.amp_dtype).removeprefix("torch."),
        "clock": label, "pairs": len(amp_s), "fp32_images_per_s": summary([sizes.amp_batch / s for s in fp32_s]),
        "amp_images_per_s": summary([sizes.amp_batch / s for s in amp_s]), "speedup": summary([f / a for f, a in zip(fp32_s, amp_s)]),
    }  # fmt: skip


# --- latency ---------------------------------------------------------------------------------


def check_latency(plan: DevicePlan, sizes: Sizes) -> dict[str, Any]:
    """The record's latency measurement of a structured and an unstructured pruned model on this device."""
    from bench.pruning_speedup import INPUT_SHAPE, SPARSE_COMPRESSION, fresh, global_pruned, halve_macs

    pairs = {"resnet56-macs/2": ("resnet56", lambda: halve_macs(fresh("resnet56"))),
             f"resnet20-global-{SPARSE_COMPRESSION:g}x": ("resnet20", lambda: global_pruned(SPARSE_COMPRESSION))}  # fmt: skip
    results = {}
    for label, (dense_name, prune) in pairs.items():
        pruned = prune().to(plan.device)
        dense = fresh(dense_name).to(plan.device)
        results[label] = measure_latency(dense, pruned, INPUT_SHAPE, plan, sizes.latency_batches, sizes.latency_seconds / len(pairs))
    return results


CHECKS: dict[str, Callable[[DevicePlan, Sizes], dict[str, Any]]] = {"ddp": check_ddp, "dali": check_dali, "amp": check_amp, "latency": check_latency}


def run_checks(plan: DevicePlan, sizes: Sizes, names: list[str]) -> dict[str, Any]:
    """Each check's figures and seconds, or its error: one broken check does not hide the others."""
    results: dict[str, Any] = {}
    for name in names:
        began = time.perf_counter()
        print(f"gpu-check: {name} ...", flush=True)
        try:
            results[name] = CHECKS[name](plan, sizes)
        except Exception as exc:  # noqa: BLE001 - recorded and shown; the other checks still run
            results[name] = {"error": f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
        results[name]["seconds"] = round(time.perf_counter() - began, 1)
    return results


def render(record: dict[str, Any]) -> None:
    rows = []
    for name, result in record["checks"].items():
        if "error" in result:
            rows.append([name, f"FAILED: {result['error']}", result["seconds"]])
        elif name == "ddp":
            rows.append([name, f"{result['backend']} x{result['world_size']}: {result['images_per_s']:.0f} images/s, "
                               f"replicas identical: {result['replicas_identical']}", result["seconds"]])  # fmt: skip
        elif name == "dali":
            rows.append([name, f"mixed {result.get('mixed_images_per_s', ['-'])[0]} vs cpu {result['cpu_images_per_s'][0]} images/s "
                               f"({result.get('mixed_over_cpu', ['-'])[0]}x), {result['threads']} CPU threads", result["seconds"]])  # fmt: skip
        elif name == "amp":
            rows.append([name, f"{result['model']} b{result['batch']}: {result['amp_dtype']} {result['amp_images_per_s'][0]} vs fp32 "
                               f"{result['fp32_images_per_s'][0]} images/s ({result['speedup'][0]}x)", result["seconds"]])  # fmt: skip
        else:
            text = "; ".join(f"{label}: " + ", ".join(f"b{b} {s}x" for b, s in figures["speedup"].items()) for label, figures in result.items()
                             if isinstance(figures, dict))  # fmt: skip
            rows.append([name, text, result["seconds"]])
    print_table(f"GPU check on {record['device']}", ["check", "result", "s"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(CHECKS)}")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",")] if args.only else list(CHECKS)
    if unknown := sorted(set(names) - set(CHECKS)):
        parser.error(f"--only: unknown check(s) {', '.join(unknown)}; expected {', '.join(CHECKS)}")
    plan = plan_device()
    if plan.device.type != "cuda":
        print(NO_GPU)
        return 0
    checks = run_checks(plan, Sizes(), names)
    write_result(NAME, {"device": plan.hardware(), "gpus": torch.cuda.device_count(), "torch_cuda": torch.version.cuda, "checks": checks})
    render(read_result(NAME))
    return 1 if any("error" in result for result in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
