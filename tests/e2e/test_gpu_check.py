"""The GPU check's CPU path: without a GPU it says so in one line and exits 0; every check it
runs on a GPU also runs here on the CPU plan (gloo DDP, DALI's CPU decoder, bf16 autocast, the
wall clock), at toy sizes, so that a GPU session only has to run it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import gpu_check
from bench.common import RESULTS_DIR
from support.cli import REPO
from prunebench.core.device import plan_device
from prunebench.core.latency import MIN_PAIRS

pytestmark = pytest.mark.slow  # gloo DDP, DALI and the GPU check's script: not in `make test-fast`

CPU = plan_device("off", cuda_available=False)
TOY = gpu_check.Sizes(ddp_steps=2, ddp_batch=8, dali_images=20, dali_batch=4, dali_rounds=1, amp_model="resnet20", amp_image=32, amp_batch=4,
                      amp_seconds=0.0, latency_batches=(1, 2), latency_seconds=0.0)  # fmt: skip


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0() -> None:
    results = RESULTS_DIR / f"{gpu_check.NAME}.json"
    before = results.read_bytes() if results.is_file() else None
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [gpu_check.NO_GPU]
    assert (results.read_bytes() if results.is_file() else None) == before  # nothing written


def test_ddp_trains_with_identical_replicas() -> None:
    result = gpu_check.check_ddp(CPU, TOY)
    assert result["backend"] == "gloo" and result["world_size"] == 1 and result["replicas_identical"]
    assert result["images_per_s"] > 0


def test_dali_decodes_the_generated_jpegs() -> None:
    result = gpu_check.check_dali(CPU, TOY, decoders=("cpu",))
    assert result["images"] == 20 and result["cpu_images_per_s"][0] > 0 and "mixed_over_cpu" not in result


def test_amp_steps_pair_with_fp32_steps() -> None:
    result = gpu_check.check_amp(CPU, TOY)
    assert result["amp_dtype"] == "bfloat16" and result["pairs"] == MIN_PAIRS and result["speedup"][0] > 0


def test_pruned_latency_uses_the_records_measurement() -> None:
    result = gpu_check.check_latency(CPU, TOY)
    assert len(result) == 2
    for figures in result.values():
        assert figures["batch_sizes"] == [1, 2] and set(figures["speedup"]) == {1, 2}


def test_a_failing_check_is_recorded_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(plan, sizes):
        raise RuntimeError("NCCL error: unhandled system error\nmore")

    monkeypatch.setitem(gpu_check.CHECKS, "ddp", broken)
    monkeypatch.setitem(gpu_check.CHECKS, "amp", lambda plan, sizes: {"fine": True})
    results = gpu_check.run_checks(CPU, TOY, ["ddp", "amp"])
    assert results["ddp"]["error"] == "RuntimeError: NCCL error: unhandled system error" and results["amp"]["fine"]
