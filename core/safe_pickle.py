"""Reading the pickles data sets ship as (CIFAR's python batches) without running their code.

A pickle names callables that the reader calls: `pickle.load` on a file anyone can write runs
anything. CIFAR's batches hold only dicts, bytes, strings, lists, numbers and NumPy arrays, so
the reader here resolves exactly the callables that rebuild those and refuses every other
name before it is called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

# (module, name) of every callable a pickle of plain data and NumPy arrays needs: an array is
# rebuilt from its dtype and bytes (protocol 2: _reconstruct + setstate; 5: _frombuffer), and
# Python 3's protocol-2 bytes go through codecs.encode of a latin-1 string.
ALLOWED = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})  # fmt: skip
MAX_PICKLE_BYTES = 1 << 30  # a CIFAR batch is 30 MB; CIFAR-100's train file 150 MB


class ForbiddenPickle(pickle.UnpicklingError):
    """The pickle names a callable that is not one of the data types above."""


class DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise ForbiddenPickle(f"refers to {module}.{name}, which plain data never does")
        return super().find_class(module, name)


def load_data_pickle(stream: BinaryIO, encoding: str = "latin1") -> Any:
    """The data in a pickle of dicts, bytes, strings, lists, numbers and NumPy arrays; raises
    pickle.UnpicklingError (ForbiddenPickle for a pickle that would call anything else)."""
    data = stream.read(MAX_PICKLE_BYTES + 1)
    if len(data) > MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError(f"larger than {MAX_PICKLE_BYTES >> 20} MiB")
    return DataUnpickler(io.BytesIO(data), encoding=encoding).load()
