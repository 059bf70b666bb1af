"""Pruning methods. Importing this package registers every built-in method."""

# registration side effect: every built-in method, the baselines included
from prunebench.methods import dense, dt, filters, global_magnitude, imp, ltp, ns, ot, psp, random_unstructured, snip  # noqa: F401
from prunebench.methods.base import Hparams, PruningMethod
from prunebench.methods.registry import available, create, get, register, validate_hparams

__all__ = ["Hparams", "PruningMethod", "available", "create", "get", "register", "validate_hparams"]
