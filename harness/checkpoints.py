"""Per-epoch checkpoints, so that a run continues exactly where it stopped.

A checkpoint holds everything the rest of the run depends on: the epoch, the trail, elapsed
time, the phase it was taken in with the model as that phase received it (a structured
finalize is replayed from it), the model, the method's and the optimizer's state, and every
random generator (Python, NumPy, torch, CUDA, the training loader's). Rank 0 writes it into
the run directory (local or object storage) after every epoch; every rank reads it on restart,
in-process or after Ray restarts a worker. Checkpoints load as data only (weights_only).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from prunebench.core.device import Worker
from prunebench.core.errors import UserError
from prunebench.core.record import TrailEntry
from prunebench.core.storage import CHECKPOINT_FILE, RunDir
from prunebench.harness.config import MAX_EPOCHS, PHASES


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


@dataclass(frozen=True)
class Checkpoint:
    """One run's state after an epoch: the one owner of the checkpoint format. `from_state`
    checks a loaded file fully (types, ranges, tensor names and shapes against the run's
    model) before the run writes anything, so a checkpoint that is garbage, of another
    version or of another architecture is refused in one line, never half-used."""

    epoch: int
    phase: str
    trail: list[dict[str, Any]]
    elapsed: float
    entry: dict[str, torch.Tensor]  # the model as the phase received it
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    method: dict[str, Any]
    rng: dict[str, Any]

    def to_state(self) -> dict[str, Any]:
        """What torch.save writes: plain types a weights-only load accepts."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_state(cls, state: Any, where: str, run: RunShape) -> "Checkpoint":
        """The checkpoint in `state` (a weights-only load), or UserError naming what is wrong."""
        problem = _state_problem(state, run)
        if problem:
            raise UserError(f"{where}: not a checkpoint of this run ({problem}); delete it to start over")
        return cls(**state)


@dataclass(frozen=True)
class RunShape:
    """What a checkpoint must agree with: the run's phases, its epochs and its dense model."""

    phases: tuple[str, ...] = PHASES
    epochs: int = len(PHASES) * MAX_EPOCHS
    dense_shapes: dict[str, tuple[int, ...]] | None = None  # None: the weights are not checked (only the trail is read)
    structured: bool = False  # a finalized model may be narrower than the dense one

    @classmethod
    def of_model(cls, phases: tuple[str, ...], epochs: int, model: torch.nn.Module, structured: bool) -> "RunShape":
        return cls(phases, epochs, {key: tuple(value.shape) for key, value in model.state_dict().items()}, structured)


KEYS = tuple(item.name for item in fields(Checkpoint))
RNG_KEYS = frozenset({"python", "numpy", "torch", "cuda", "loader"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _state_problem(state: Any, run: RunShape) -> str | None:
    """What is wrong with a loaded checkpoint, in a few words, or None."""
    if not isinstance(state, dict) or set(state) != set(KEYS):
        return "not its format of this prunebench version"
    epoch = state["epoch"]
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and 1 <= epoch <= run.epochs):
        return f"epoch: expected an integer in [1, {run.epochs}]"
    if state["phase"] not in run.phases:
        return f"phase: expected one of {', '.join(run.phases)}"
    if not _is_number(state["elapsed"]) or state["elapsed"] < 0:
        return "elapsed: expected a non-negative number"
    if not isinstance(state["trail"], list) or len(state["trail"]) > epoch:
        return "trail: expected a list of at most one entry per epoch"
    try:
        for entry in state["trail"]:
            TrailEntry(**entry)
    except (TypeError, ValidationError):
        return "trail: an entry is not an epoch of the trail"
    for name in ("optimizer", "scaler", "method", "rng"):
        if not isinstance(state[name], dict):
            return f"{name}: expected a mapping"
    if set(state["rng"]) != RNG_KEYS:
        return "rng: expected the state of every random generator"
    if not isinstance(state["optimizer"].get("param_groups"), list):
        return "optimizer: expected an optimizer's state"
    return _weights_problem("entry", state["entry"], run, exact=state["phase"] == run.phases[0]) or _weights_problem(
        "model", state["model"], run, exact=False
    )


def _dense_name(key: str) -> str | None:
    """The dense model's name of a tensor (`conv.parametrizations.weight.original` is
    `conv.weight`), or None for a method's own tensor inside a parametrization."""
    if ".parametrizations." not in key:
        return key
    head, _, rest = key.partition(".parametrizations.")
    tensor, _, tail = rest.partition(".")
    return f"{head}.{tensor}" if tail == "original" else None


def _weights_problem(name: str, weights: Any, run: RunShape, exact: bool) -> str | None:
    """Tensors by name that fit the run's dense model: every name one of its own, the same
    shapes (no wider for a structured method), all of them while the model is still dense."""
    if run.dense_shapes is None:
        return None
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return f"{name}: expected the model's tensors by name"
    names = {key: _dense_name(key) for key in weights}
    for key, dense in names.items():
        if dense is None:
            continue
        shape = run.dense_shapes.get(dense)
        if shape is None:
            return f"{name}: {key} is not a tensor of this model"
        found = tuple(weights[key].shape)
        if len(found) != len(shape) or (found != shape if not run.structured else any(f > d for f, d in zip(found, shape))):
            return f"{name}: {key} has shape {list(found)}, the model's is {list(shape)}"
    if exact and set(names.values()) != set(run.dense_shapes):
        return f"{name}: expected every tensor of the model"
    return None


class Checkpoints:
    """checkpoint.pt in the run directory, read and checked once per process (the run's set-up
    checks it before anything is written; the loop then resumes from the same object)."""

    def __init__(self, run: RunDir, worker: Worker = Worker()) -> None:
        self.run, self.worker = run, worker
        self._state: Any = None  # the file as loaded, until the next save or clear

    def load(self, shape: RunShape = RunShape()) -> Checkpoint | None:
        """The last checkpoint, checked against `shape` (by default only its format); None when
        there is none. The file is read once; each call checks it against its own shape."""
        where = self.run.file_uri(CHECKPOINT_FILE)
        if self._state is None:
            try:
                self._state = self.run.load_torch(CHECKPOINT_FILE)
            except Exception as exc:
                raise UserError(f"{where}: cannot resume from this checkpoint ({exc.__class__.__name__}); delete it to start over") from None
        return None if self._state is None else Checkpoint.from_state(self._state, where, shape)

    def save(self, checkpoint: Checkpoint) -> None:
        self._state = None
        if self.worker.is_chief:
            self.run.write_torch(CHECKPOINT_FILE, checkpoint.to_state())

    def clear(self) -> None:
        self._state = None
        if self.worker.is_chief:
            self.run.delete(CHECKPOINT_FILE)
