"""``seed_everything``: one call that seeds Python, numpy and every installed backend."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

import numpy as np

from modularml.backends.backend import Backend, get_backend
from modularml.errors import InvalidTypeError

__all__ = ["seed_everything"]

logger = logging.getLogger("modularml.backends")


def seed_everything(seed: int, *, backends: Iterable[str | Backend] | None = None) -> list[Backend]:
    """Seed Python's ``random``, numpy's global generator and every installed backend's framework.

    Each backend seeds its own framework through the backend protocol's ``seed`` (torch:
    ``torch.manual_seed`` and every CUDA device; TensorFlow: Keras' and TensorFlow's global seeds;
    numpy-based backends: the generators they draw from). Seeding a backend creates its
    implementation, which imports its framework. Generators made explicitly
    (``np.random.default_rng(...)``, a sampler's ``seed=``) keep their own seeds.

    Args:
        seed: A non-negative integer (numpy's global generator takes it modulo 2**32).
        backends: The backends to seed; every installed backend (:meth:`Backend.installed`) when None.

    Returns:
        The backends that were seeded, in order.

    Raises:
        TypeError: If ``seed`` is not a non-negative int.
        BackendNotInstalledError: If a backend named in ``backends`` is not installed.

    Example:
        >>> import modularml as mml
        >>> mml.seed_everything(0)  # doctest: +SKIP
        [<Backend.NUMPY: 'numpy'>, <Backend.TORCH: 'torch'>]
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidTypeError(f"seed_everything() takes a non-negative int; got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    chosen = Backend.installed() if backends is None else [Backend(b) for b in backends]
    for backend in chosen:
        get_backend(backend).seed(seed)
        logger.debug("seeded backend %s with %d", backend, seed)
    return chosen
