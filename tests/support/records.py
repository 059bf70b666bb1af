"""Result records and run files: writing and reading them as the production code does, and
hand-made records for the leaderboard tests: complete, valid records that a test
changes one field at a time, so each test states only what it is about."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from prunebench.core.record import ResultRecord
from prunebench.core.storage import RESULT_FILE, Storage

_DEFAULT_HPARAMS = {"dense": {}, "ltp": {"lambda0": 2e-6, "t0": 1e-3}, "global": {"schedule": "gradual"}, "ns": {"lam": 1e-4}}
_GRANULARITY = {"dense": "none", "ns": "structured", "psp": "structured", "ot": "structured"}


def make_record(method: str = "ltp", seed: int = 0, top1: float = 0.9, density: float = 0.25, **overrides: Any) -> dict[str, Any]:
    """A finished run of `method` on cifar10/resnet20 at 32x32; `overrides` replace any key."""
    macs_dense = 40_000_000
    hparams = copy.deepcopy(overrides.pop("hparams", _DEFAULT_HPARAMS.get(method, {})))
    epochs = overrides.pop("epochs", 10)
    identity = json.dumps([method, hparams, epochs, {k: v for k, v in overrides.items() if k != "run_id"}], sort_keys=True, default=str)
    config_hash = hashlib.sha256(identity.encode()).hexdigest()[:12]
    trail = [
        {"epoch": e, "phase": "prune" if e <= epochs // 2 else "finetune", "train_loss": 1.0 / e, "val_top1": top1 * e / epochs,
         "density": 1.0 - (1.0 - density) * min(1.0, 2 * e / epochs), "compression": 1.0, "macs": macs_dense}
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    record = {
        "run_id": f"{method}-resnet20-cifar10-s{seed}-{config_hash}",
        "experiment": "unit",
        "config_hash": config_hash,
        "method": method,
        "model": "resnet20",
        "dataset": "cifar10",
        "seed": seed,
        "hparams": hparams,
        "status": "finished",
        "error": None,
        "epochs": epochs,
        "top1": top1,
        "top5": min(1.0, top1 + 0.08),
        "prunable_params": 270_000,
        "prunable_nonzero": round(270_000 * density),
        "density": density,
        "compression_rate": 1.0 / density,
        "macs": round(macs_dense * density),
        "macs_dense": macs_dense,
        "flops": 2 * round(macs_dense * density),
        "target_compression": None,
        "epochs_to_sparsity": epochs // 2 if method != "dense" else None,
        "trail": trail,
        "wall_seconds": 12.5,
        "environment": {"torch": "test"},
        "granularity": _GRANULARITY.get(method, "unstructured"),
        "input_size": [3, 32, 32],
        "phases": {"dense": epochs if method == "dense" else 0, "prune": 0 if method == "dense" else epochs // 2,
                   "finetune": 0 if method == "dense" else epochs - epochs // 2},
    }  # fmt: skip
    record.update(overrides)
    return record


def failed_record(method: str = "ltp", error: str = "RunFailed: loss is nan at epoch 3", **overrides: Any) -> dict[str, Any]:
    record = make_record(method, **overrides)
    record.update(status="failed", error=error, top1=None, top5=None, density=None, compression_rate=None, macs=None, flops=None)
    return record


def write_runs(root: Path, records: list[dict[str, Any]]) -> Path:
    """Write each record as root/<experiment>/<run_id>/result.json; returns root."""
    for record in records:
        write_result(root / record["experiment"] / record["run_id"], record)
    return root


def sample_results(root: Path) -> Path:
    """A small but complete results tree: dense reference, two methods over seeds, a structured
    method, a failed run and a run whose name is an HTML/markup injection attempt."""
    records = [
        make_record("dense", seed=0, top1=0.92, density=1.0),
        make_record("dense", seed=1, top1=0.93, density=1.0),
        make_record("ltp", seed=0, top1=0.90, density=0.2),
        make_record("ltp", seed=1, top1=0.91, density=0.2),
        make_record("ltp", seed=2, top1=0.89, density=0.2),
        make_record("global", seed=0, top1=0.86, density=0.1, hparams={"schedule": "gradual"}),
        make_record("global", seed=0, top1=0.88, density=0.3, hparams={"schedule": "one_shot"}),
        make_record("global", seed=0, top1=0.80, density=0.4, hparams={"schedule": "one_shot", "update_every": 5},
                    run_id="<script>alert(1)</script>"),
        make_record("ns", seed=0, top1=0.87, density=0.5),
        failed_record("ltp", seed=7, error="RunFailed: loss is nan <b>at</b> epoch 3"),
    ]  # fmt: skip
    return write_runs(root, records)


def write_result(run_dir: Path, record: dict) -> Path:
    """Write a hand-made record as RUN_DIR/result.json through the production writer (which
    validates it against the record schema)."""
    run_dir = Path(run_dir)
    Storage(str(run_dir.parent.parent)).run(run_dir.parent.name, run_dir.name).write_record(ResultRecord.model_validate(record))
    return run_dir / RESULT_FILE


def read_result(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RESULT_FILE).read_text())


def saved_checkpoint(run_dir: Path) -> dict | None:
    """The run's last epoch checkpoint (written atomically), which a restarted worker resumes from."""
    import torch

    try:
        return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError):  # not there yet, or replaced meanwhile
        return None
