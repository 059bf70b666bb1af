"""Per-epoch checkpoints, so that a run continues exactly where it stopped.

A checkpoint holds everything the rest of the run depends on: the epoch, the trail, elapsed
time, the phase it was taken in with the model as that phase received it (a structured
finalize is replayed from it), the model, the method's and the optimizer's state, and every
random generator (Python, NumPy, torch, CUDA, the training loader's). Rank 0 writes it into
the run directory (local or object storage) after every epoch; every rank reads it on restart,
in-process or after Ray restarts a worker. Checkpoints load as data only (weights_only).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from prunebench.core.device import Worker
from prunebench.core.errors import UserError
from prunebench.core.storage import CHECKPOINT_FILE, RunDir


def capture_rng(loader_generator: torch.Generator | None) -> dict[str, Any]:
    """Every random generator's state, in types a weights-only load accepts."""
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }


def restore_rng(state: dict[str, Any], loader_generator: torch.Generator | None) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and state["loader"] is not None:
        loader_generator.set_state(state["loader"])


CHECKPOINT_KEYS = frozenset({"epoch", "phase", "trail", "elapsed", "entry", "model", "optimizer", "scaler", "method", "rng"})


class Checkpoints:
    """checkpoint.pt in the run directory."""

    def __init__(self, run: RunDir, worker: Worker = Worker()) -> None:
        self.run, self.worker = run, worker

    def load(self) -> dict[str, Any] | None:
        where = self.run.file_uri(CHECKPOINT_FILE)
        try:
            state = self.run.load_torch(CHECKPOINT_FILE)
        except Exception as exc:
            raise UserError(f"{where}: cannot resume from this checkpoint ({exc.__class__.__name__}); delete it to start over") from None
        if state is not None and (not isinstance(state, dict) or not CHECKPOINT_KEYS <= set(state)):
            raise UserError(f"{where}: not a checkpoint of this prunebench version; delete it to start over")
        return state

    def save(self, state: dict[str, Any]) -> None:
        if self.worker.is_chief:
            self.run.write_torch(CHECKPOINT_FILE, state)

    def clear(self) -> None:
        if self.worker.is_chief:
            self.run.delete(CHECKPOINT_FILE)
