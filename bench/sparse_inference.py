"""Do an unstructured method's zeros pay off? Sparse CSR kernels against the dense ones, on CPU.

What: the Linear layers of LeNet-300-100 (784-300-100-10, MNIST's flat input) and of AlexNet's
classifier (9216-4096-4096-1000, the ImageNet model's fully connected part, which holds 94 % of
its weights) with each layer magnitude-pruned to 50, 90, 95 and 99 % zeros: the densities the
unstructured methods reach (LTP and DT report 10-100x on these layers). The dense path is the
model as the harness keeps it (zeros stored and multiplied, `nn.Linear`); the sparse path
stores every weight as a CSR matrix (`Tensor.to_sparse_csr`) and computes W @ x^T with torch's
sparse-dense matrix product (MKL's on x86 builds), plus the bias. Both give the same outputs
(checked before timing).

How: per model, density and batch size (1 and 64) the two forward passes alternate in shuffled
rounds after a warm-up (bench.common.interleave); the speedup dense / sparse is paired round by
round; median and inter-quartile range. One torch thread by default; with one thread CPU time
is the clock (bench.common.judged).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import torch
from torch import nn

from bench.common import interleave, judged, machine_caption, print_table, ratios, read_result, show, spread, write_result
from bench.pruning_speedup import forward_passes
from prunebench.harness import models

NAME = "sparse_inference"
ZEROS = (0.5, 0.9, 0.95, 0.99)
BATCHES = {1: 20, 64: 2}  # batch size -> forward passes per timed call


class CsrLinear(nn.Module):
    """A Linear layer whose weight is stored and multiplied as a CSR matrix."""

    def __init__(self, layer: nn.Linear) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self.weight = layer.weight.detach().to_sparse_csr()
        self.bias = None if layer.bias is None else layer.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.mm(self.weight, x.t()).t()  # (out, in) @ (in, batch): the CSR operand first
        return out if self.bias is None else out + self.bias


def fully_connected(name: str) -> tuple[nn.Sequential, int]:
    """The model's Linear stack (with its activations) in eval mode, and its input features."""
    torch.manual_seed(0)
    if name == "lenet_300_100":
        return models.create(name, 10, 1, 28)[1:].eval(), 784
    classifier = models.create("alexnet", 1000, 3, 224).classifier
    return nn.Sequential(*(m for m in classifier if not isinstance(m, nn.Dropout))).eval(), 9216


def magnitude_pruned(model: nn.Sequential, zeros: float) -> nn.Sequential:
    """Each Linear layer with its smallest `zeros` fraction of weights set to zero (in place)."""
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                smallest_kept = layer.weight.abs().flatten().kthvalue(int(zeros * layer.weight.numel()) + 1).values
                layer.weight.mul_(layer.weight.abs() >= smallest_kept)
    return model


def as_csr(model: nn.Sequential) -> nn.Sequential:
    return nn.Sequential(*(CsrLinear(m) if isinstance(m, nn.Linear) else m for m in model)).eval()


def compare(name: str, zeros: float, rounds: int, threads: int) -> dict[str, Any]:
    dense, features = fully_connected(name)
    dense = magnitude_pruned(dense, zeros)
    sparse = as_csr(dense)
    weights = sum(m.weight.numel() for m in dense if isinstance(m, nn.Linear))
    nonzero = sum(int(m.weight.count_nonzero()) for m in dense if isinstance(m, nn.Linear))
    row: dict[str, Any] = {"model": name, "zeros": zeros, "weights": weights, "nonzero": nonzero, "latency": {}}
    for batch, count in BATCHES.items():
        inputs = torch.randn(batch, features)
        with torch.inference_mode():
            torch.testing.assert_close(sparse(inputs), dense(inputs), rtol=1e-4, atol=1e-4)
        timings = interleave({"dense": forward_passes(dense, inputs, count), "csr": forward_passes(sparse, inputs, count)}, rounds)
        clock, times = judged(timings, threads)
        row["latency"][batch] = {
            "dense_ms": 1000 * spread(times["dense"]).median / count,
            "csr_ms": 1000 * spread(times["csr"]).median / count,
            "speedup": ratios(times, "csr")["dense"],  # dense time / CSR time, paired by round
            "clock": clock,
        }
    print(f"  {name} {zeros:.0%} zeros: CSR speedup b1 {row['latency'][1]['speedup'].median:.2f}x, "
          f"b64 {row['latency'][64]['speedup'].median:.2f}x", flush=True)  # fmt: skip
    return row


def render(record: dict[str, Any]) -> None:
    rows = []
    for row in record["rows"]:
        small, large = row["latency"]["1"], row["latency"]["64"]
        rows.append([row["model"], f"{row['zeros']:.0%}", f"{small['dense_ms']:.3f} / {small['csr_ms']:.3f}", show(small["speedup"]),
                     f"{large['dense_ms']:.2f} / {large['csr_ms']:.2f}", show(large["speedup"])])  # fmt: skip
    clock = record["rows"][0]["latency"]["1"]["clock"] if record["rows"] else "-"
    print_table(f"Sparse CSR against dense Linear kernels ({record['threads']} thread(s), {record['rounds']} rounds)",
                ["model", "zeros", "ms b1 dense / CSR", "CSR speedup b1 [IQR]", "ms b64 dense / CSR", "CSR speedup b64 [IQR]"], rows,
                f"speedup = dense / CSR, > 1 means the zeros pay off; judged on {clock}; {machine_caption(record)}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sparse_inference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per model, density and batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--models", default="lenet_300_100,alexnet", help="comma-separated subset of lenet_300_100, alexnet")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.models.split(",")]
    if unknown := sorted(set(names) - {"lenet_300_100", "alexnet"}):
        parser.error(f"--models: unknown {', '.join(unknown)}; expected lenet_300_100 and/or alexnet")
    torch.set_num_threads(args.threads)
    rows = [compare(name, zeros, args.rounds, args.threads) for name in names for zeros in ZEROS]
    write_result(NAME, {"rounds": args.rounds, "threads": args.threads, "rows": rows})
    render(read_result(NAME))


if __name__ == "__main__":
    main()
