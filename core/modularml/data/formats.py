"""Output formats of data accessors (``fmt=``): numpy, dict of numpy, pandas, and backend tensors.

- ``"np"`` / ``"numpy"``: one array. One column reads as ``(N, *shape)`` (a scalar column as
  ``(N,)``); several columns are stacked on axis 1, ``(N, n_columns, *shape)``, which needs equal
  per-sample shapes.
- ``"dict_numpy"`` (also ``"dict_np"``, ``"dict"``): key -> array.
- ``"pandas"`` (also ``"pd"``, ``"df"``): a DataFrame; array-valued cells hold numpy arrays.
- An installed backend's format (``"torch"``, ``"tf"``, ...): as ``"np"``, converted by the
  backend; ``"dict_<format>"`` gives key -> tensor.

Backends are reached only through the backend protocol; this module never imports a framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["NUMPY_FORMATS", "DICT_NUMPY_FORMATS", "PANDAS_FORMATS", "format_arrays", "import_pandas", "stack_columns"]

NUMPY_FORMATS = frozenset({"np", "numpy"})
DICT_NUMPY_FORMATS = frozenset({"dict_numpy", "dict_np", "dict"})
PANDAS_FORMATS = frozenset({"pandas", "pd", "df"})


def import_pandas() -> Any:
    """Import pandas, or raise an error that says how to install it.

    Raises:
        ImportError: If pandas is not installed (``pip install "modularml[pandas]"``).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            'This needs pandas, an optional extra of modularml. Install it with: pip install "modularml[pandas]"'
        ) from None
    return pd


def stack_columns(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """One array from several columns: a single column as is, several stacked on axis 1.

    Raises:
        InvalidArgumentError: If there are no columns, or their per-sample shapes differ.
    """
    if not arrays:
        raise InvalidArgumentError("No columns were selected, so there is nothing to return as one array.")
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    shapes = {key: a.shape[1:] for key, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        detail = ", ".join(f"{k!r}: {s}" for k, s in shapes.items())
        raise InvalidArgumentError(
            f"Cannot stack columns of different per-sample shapes into one array ({detail}); select columns of "
            "one shape, or use fmt='dict_numpy'."
        )
    return np.stack(list(arrays.values()), axis=1)


def _to_pandas(arrays: dict[str, np.ndarray], index: Any = None) -> Any:
    pd = import_pandas()
    data: dict[str, Any] = {}
    for key, values in arrays.items():
        if values.ndim == 1:
            data[key] = values
        else:
            flat = pa.array(np.ascontiguousarray(values).reshape(-1))
            for size in reversed(values.shape[1:]):
                flat = pa.FixedSizeListArray.from_arrays(flat, size)
            data[key] = flat.to_pandas()
    n = len(next(iter(arrays.values()))) if arrays else 0
    return pd.DataFrame(data, index=index if index is not None else pd.RangeIndex(n))


def _backend_for(fmt: str) -> Any:
    from modularml.backends import backend_for_format, get_backend

    backend = backend_for_format(fmt)
    if backend is None:
        return None
    return get_backend(backend)


def _to_backend(backend: Any, array: np.ndarray, key: str) -> Any:
    if array.dtype == object:
        raise InvalidArgumentError(
            f"Column {key!r} holds strings, which cannot become {backend.name} tensors; leave it out or use "
            "fmt='numpy'."
        )
    return backend.from_numpy(array)


def format_arrays(arrays: dict[str, np.ndarray], fmt: str) -> Any:
    """Return ``arrays`` (key -> ``(N, *shape)``) in the output format ``fmt``.

    Raises:
        InvalidArgumentError: If ``fmt`` is unknown (the message lists the formats available
            here), or the columns cannot be combined as asked.
    """
    if not isinstance(fmt, str):
        fmt = getattr(fmt, "value", fmt)
    if not isinstance(fmt, str):
        raise InvalidTypeError(f"fmt is a format name such as 'numpy' or 'dict_numpy'; got {fmt!r}.")
    key = fmt.lower()
    if key in DICT_NUMPY_FORMATS:
        return dict(arrays)
    if key in NUMPY_FORMATS:
        return stack_columns(arrays)
    if key in PANDAS_FORMATS:
        return _to_pandas(arrays)
    backend = _backend_for(key)
    if backend is not None:
        return _to_backend(backend, stack_columns(arrays), ", ".join(arrays))
    if key.startswith("dict_"):
        backend = _backend_for(key[5:])
        if backend is not None:
            return {k: _to_backend(backend, a, k) for k, a in arrays.items()}
    raise InvalidArgumentError(f"Unknown data format {fmt!r}. Available here: {available_formats()}.")


def available_formats() -> list[str]:
    """The format names accepted by :func:`format_arrays` in this environment."""
    from modularml.plugins import get_plugin_manager

    names = ["numpy", "np", "dict_numpy", "pandas"]
    for name, info in get_plugin_manager().backends().items():
        for fmt in (*info.formats, name):
            names += [fmt, f"dict_{fmt}"]
    return list(dict.fromkeys(names))
