"""The state of every random number generator a run uses, as plain data (for resumable checkpoints).

A run draws from Python's ``random``, numpy's global generator (legacy ``np.random.*``) and the
generators of the backends its nodes use (torch's on every device, TensorFlow's and Keras', the
numpy backend's own). :func:`capture_rng_state` reads all of them into JSON values and numpy
arrays; :func:`restore_rng_state` puts them back, after which every generator draws exactly what
it would have drawn. Samplers do not appear here: their order is derived from ``(seed, epoch)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from modularml.errors import InvalidArgumentError

__all__ = ["capture_rng_state", "numpy_global_state", "restore_rng_state", "set_numpy_global_state"]


def numpy_global_state() -> dict[str, Any]:
    """numpy's global (legacy) generator state: ``np.random.get_state()`` as a dict of plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": name,
        "keys": np.asarray(keys).copy(),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def set_numpy_global_state(state: Mapping[str, Any] | None) -> None:
    """Restore :func:`numpy_global_state` output (None leaves the generator alone).

    Raises:
        InvalidArgumentError: If ``state`` is malformed.
    """
    if state is None:
        return
    try:
        keys = np.asarray(state["keys"], dtype=np.uint32)
        np.random.set_state(
            (str(state["name"]), keys, int(state["pos"]), int(state["has_gauss"]), float(state["cached"]))
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"Not a numpy global RNG state: {exc}") from None


def _python_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {"version": version, "internal": np.asarray(internal, dtype=np.uint64), "gauss": gauss}


def _set_python_state(state: Mapping[str, Any]) -> None:
    try:
        internal = tuple(int(v) for v in np.asarray(state["internal"]).tolist())
        random.setstate((int(state["version"]), internal, state["gauss"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"Not a Python random state: {exc}") from None


def capture_rng_state(backends: Iterable[str]) -> dict[str, Any]:
    """Python's, numpy's global and each named backend's generator states (``get_rng_state``)."""
    from modularml.backends.backend import get_backend

    return {
        "python": _python_state(),
        "numpy": numpy_global_state(),
        "backends": {name: get_backend(name).get_rng_state() for name in sorted(set(backends))},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what :func:`capture_rng_state` read.

    Every part is checked by its owner; the backends' states are restored after Python's and
    numpy's (a backend that seeds numpy too then leaves it as saved).

    Raises:
        InvalidArgumentError: If a part is malformed.
    """
    from modularml.backends.backend import get_backend

    if not isinstance(state, Mapping):
        raise InvalidArgumentError(f"An RNG state is the dict capture_rng_state() returns; got {state!r:.120}.")
    for name, backend_state in dict(state.get("backends") or {}).items():
        get_backend(name).set_rng_state(dict(backend_state))
    _set_python_state(state["python"])
    set_numpy_global_state(state["numpy"])
