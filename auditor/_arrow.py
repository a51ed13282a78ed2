"""numpy <-> pyarrow conversions that do not import pandas.

pyarrow's own conversions (``pa.array(ndarray)``, ``Array.to_numpy()``) first ask whether the
object is a pandas one, which imports pandas when it is installed: 0.3-0.5 s of CPU, more than
`audit trec-eval` spends reading a 2-million-line run. These helpers go through the buffers
instead, for the plain cases the fast paths use (numeric arrays without nulls, boolean masks).

:func:`compute` calls an Arrow compute function without importing ``pyarrow.compute``, whose
import builds a Python wrapper for each of its few hundred functions (30-45 ms of CPU, about a
twentieth of an `audit trec-eval` run). ``Array.take``/``.filter``/``.cast`` import it too.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_numpy", "from_numpy", "binary_array", "compute"]

_NP_OF = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8,
          "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "float": np.float32,
          "double": np.float64}


def _bits(buf: Any, off: int, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(buf, dtype=np.uint8), count=off + n, bitorder="little")[off:].view(bool)


def to_numpy(arr: Any, null: Any = None) -> np.ndarray:
    """A numeric or boolean pyarrow Array (or ChunkedArray) as a numpy array; nulls become ``null``.

    Numbers are a view of Arrow's buffer when there is one chunk and no null (read-only);
    booleans are unpacked into a new bool array. Raises ValueError on nulls when ``null`` is None.
    """
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            arr = arr.chunk(0)
        elif arr.num_chunks == 0:
            return np.zeros(0, dtype=bool if pa.types.is_boolean(arr.type) else _NP_OF[str(arr.type)])
        else:
            return np.concatenate([to_numpy(c, null) for c in arr.chunks])
    n, off = len(arr), arr.offset
    if arr.null_count and null is None:
        raise ValueError("to_numpy: the array has nulls")
    buf = arr.buffers()[1]
    if n == 0:
        out = np.zeros(0, dtype=bool if pa.types.is_boolean(arr.type) else _NP_OF[str(arr.type)])
    elif pa.types.is_boolean(arr.type):
        out = _bits(buf, off, n)
    else:
        out = np.frombuffer(buf, dtype=_NP_OF[str(arr.type)])[off:off + n]
    if arr.null_count:
        out = out.copy()
        out[~_bits(arr.buffers()[0], off, n)] = null
    return out


_PA_OF = {np.dtype(np.int32): "int32", np.dtype(np.int64): "int64", np.dtype(np.uint64): "uint64",
          np.dtype(np.float64): "float64", np.dtype(np.uint32): "uint32"}


def from_numpy(x: np.ndarray) -> Any:
    """A 1-d numeric or bool numpy array as a pyarrow Array (numbers share the memory)."""
    import pyarrow as pa

    x = np.ascontiguousarray(x)
    if x.dtype == bool:
        bits = np.packbits(x, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), x.size, [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(getattr(pa, _PA_OF[x.dtype])(), x.size, [None, pa.py_buffer(x)])


def binary_array(items: list[bytes]) -> Any:
    """A pyarrow binary Array of the given bytes strings."""
    import pyarrow as pa

    lens = np.fromiter((len(b) for b in items), dtype=np.int64, count=len(items))
    off = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    typ = pa.binary() if off[-1] < 2**31 else pa.large_binary()
    off = off.astype(np.int32) if typ == pa.binary() else off
    return pa.Array.from_buffers(typ, len(items), [None, pa.py_buffer(off), pa.py_buffer(b"".join(items))])


def compute(name: str, *args: Any, options: Any = None) -> Any:
    """``pyarrow.compute.<name>(*args)`` through ``pyarrow._compute.call_function`` (no wrapper module).

    ``options``: a ``pyarrow._compute`` options object (e.g. ``SortOptions``), or None.
    """
    from pyarrow._compute import call_function

    return call_function(name, list(args), options)


def sort_options(keys: list[tuple[str, str]]) -> Any:
    """``SortOptions(sort_keys=keys)`` for :func:`compute` ("sort_indices")."""
    from pyarrow._compute import SortOptions

    return SortOptions(keys)


def set_lookup(values: Any) -> Any:
    """``SetLookupOptions(value_set=values)`` for :func:`compute` ("index_in", "is_in")."""
    from pyarrow._compute import SetLookupOptions

    return SetLookupOptions(values)
