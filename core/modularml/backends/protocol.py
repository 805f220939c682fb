"""The backend protocol: everything the core asks of an ML framework.

The core never inspects a tensor's type itself; it calls the backend that owns the value.
A backend is one object, created lazily by the loader its plugin registered (see
:func:`modularml.plugins.hookspecs.register_backends`). Run
:class:`modularml.testing.BackendConformance` against a new backend to check it.

Conventions every implementation follows:

- ``dtype`` arguments accept numpy dtypes or their names (``"float32"``); ``None`` keeps the
  input's dtype.
- ``device`` arguments accept the strings of :mod:`modularml.backends.devices`; ``None`` means
  the backend's default device. An unavailable device raises :class:`~modularml.errors.DeviceError`.
- ``axis`` arguments follow numpy, negative values included.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends.padding import PadWidth

__all__ = ["BackendProtocol"]


@runtime_checkable
class BackendProtocol(Protocol):
    """What a backend implements. Capability flags let the core ask instead of special-casing.

    Attributes:
        name: Canonical backend name, as registered (``"torch"``).
        trainable: Whether models of this backend learn by gradient steps.
        supports_partial_fit: Whether models of this backend can be fitted incrementally.
        zero_copy_from_numpy: Whether :meth:`from_numpy` shares memory with a contiguous
            CPU array of a supported dtype.
    """

    name: str
    trainable: bool
    supports_partial_fit: bool
    zero_copy_from_numpy: bool

    # -- devices and randomness ---------------------------------------------------------
    def available_devices(self) -> list[str]:
        """Canonical names of the devices this backend can use here, ``"cpu"`` first."""
        ...

    def device_of(self, value: Any) -> str:
        """Canonical device name of a native value."""
        ...

    def seed(self, seed: int) -> None:
        """Seed the framework's random number generators (all devices)."""
        ...

    def random_normal(self, shape: Sequence[int], *, dtype: DTypeLike = "float32", device: str | None = None) -> Any:
        """Draw a native tensor of standard normal values from the framework's generator."""
        ...

    # -- conversion -------------------------------------------------------------------------
    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is one of this backend's tensors. Must never import a framework."""
        ...

    def from_numpy(self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None) -> Any:
        """Convert a numpy array to a native tensor, without a copy where the framework allows.

        Non-contiguous or read-only arrays are copied first.
        """
        ...

    def to_numpy(self, value: Any) -> np.ndarray:
        """Convert a native tensor (or a numpy array) to numpy, detached and on the CPU."""
        ...

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[Any], axis: int = 0) -> Any:
        """Join native tensors along an existing axis."""
        ...

    def stack(self, values: Sequence[Any], axis: int = 0) -> Any:
        """Join native tensors along a new axis."""
        ...

    def pad(self, value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Any:
        """Pad a native tensor like ``np.pad``.

        ``mode`` is ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"`` (numpy's
        ``constant``, ``reflect``, ``edge`` and ``wrap``), in any number of dimensions.
        """
        ...

    def mean(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        """Arithmetic mean over the given axes (all axes when ``None``).

        Integer and bool inputs give a floating result, in the backend's default float precision.
        """
        ...

    def detach(self, value: Any) -> Any:
        """The same values with no link to the autograd graph."""
        ...

    def no_grad(self) -> AbstractContextManager[Any]:
        """A context in which operations record no gradients."""
        ...
