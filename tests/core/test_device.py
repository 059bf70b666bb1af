"""Device selection logic: the GPU branch is checked by telling plan_device what the worker has."""

import torch

from prunebench.core.device import plan_device


def test_cpu_worker_uses_gloo_cpu_dali_and_no_amp_by_default():
    plan = plan_device("auto", cuda_available=False)
    assert plan.device == torch.device("cpu") and plan.backend == "gloo"
    assert plan.amp_dtype is None and plan.dali_decoder == "cpu" and plan.dali_device_id is None


def test_gpu_worker_uses_nccl_mixed_decoding_and_bf16_amp():
    plan = plan_device("auto", local_rank=3, cuda_available=True, bf16_supported=True)
    assert plan.device == torch.device("cuda", 3) and plan.backend == "nccl"
    assert plan.amp_dtype == torch.bfloat16 and not plan.use_grad_scaler
    assert plan.dali_decoder == "mixed" and plan.dali_device_id == 3


def test_gpu_without_bf16_falls_back_to_fp16_with_loss_scaling():
    plan = plan_device("on", cuda_available=True, bf16_supported=False)
    assert plan.amp_dtype == torch.float16 and plan.use_grad_scaler


def test_amp_off_is_respected_on_gpu_and_on_means_bf16_on_cpu():
    assert plan_device("off", cuda_available=True, bf16_supported=True).amp_dtype is None
    assert plan_device("on", cuda_available=False).amp_dtype == torch.bfloat16
