"""Pruning methods. Importing this package registers every built-in method."""

from prunebench.methods import dense, dt, global_magnitude, ltp, ns, ot, psp  # noqa: F401  (registration side effect)
from prunebench.methods.base import Hparams, PruningMethod
from prunebench.methods.registry import available, create, get, register, validate_hparams

__all__ = ["Hparams", "PruningMethod", "available", "create", "get", "register", "validate_hparams"]
