"""The numpy backend: :class:`~modularml_numpy.autograd.Tensor` as native values, on the CPU, trainable."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends import NumpyTensorOps
from modularml.backends.padding import PadWidth
from modularml_numpy import autograd
from modularml_numpy.autograd import Tensor, as_tensor
from modularml_numpy.training import NumpyTraining

__all__ = ["NumpyBackend"]


class NumpyBackend(NumpyTraining, NumpyTensorOps):
    """Backend whose native values are autograd :class:`~modularml_numpy.autograd.Tensor` objects.

    The tensor ops of :class:`~modularml.backends.NumpyTensorOps` (CPU only, seeding), made
    differentiable, plus the whole :class:`~modularml.backends.TrainableBackendProtocol`
    (:class:`~modularml_numpy.training.NumpyTraining`: the
    :class:`~modularml_numpy.models.LinearModel`, the ``mse`` and ``mae`` losses and the ``sgd``
    and ``adam`` optimizers, all registered through the plugin hooks). :meth:`from_numpy` wraps
    the array without copying it; :meth:`to_numpy` returns the tensor's array.
    """

    name = "numpy"
    trainable = True
    supports_partial_fit = False
    zero_copy_from_numpy = True
    framework_version = np.__version__

    # -- conversion -------------------------------------------------------------------------
    def random_normal(self, shape: Sequence[int], *, dtype: DTypeLike = "float32", device: str | None = None) -> Tensor:
        """Standard normal draws from this backend's generator, as a tensor."""
        return Tensor(super().random_normal(shape, dtype=dtype, device=device))

    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is an autograd ``Tensor`` (numpy arrays are not: they belong to the core)."""
        return isinstance(value, Tensor)

    def from_numpy(self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None) -> Tensor:
        """Wrap ``array`` (cast to ``dtype`` if given) in a tensor that shares its memory; no gradients."""
        self._check_device(device)
        return Tensor(np.asarray(array, dtype=dtype))

    def to_numpy(self, value: Any) -> np.ndarray:
        """The tensor's array (shared); numpy arrays pass through; anything else goes through ``np.asarray``."""
        if isinstance(value, Tensor):
            return value.data
        return np.asarray(value)

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[Any], axis: int = 0) -> Tensor:
        """Join tensors along an existing axis; differentiable."""
        return autograd.concat(values, axis=axis)

    def stack(self, values: Sequence[Any], axis: int = 0) -> Tensor:
        """Join tensors along a new axis; differentiable."""
        return autograd.stack(values, axis=axis)

    def pad(self, value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Tensor:
        """Pad like ``np.pad`` in any number of dimensions; differentiable."""
        return autograd.pad(value, pad_width, mode=mode, constant_value=constant_value)

    def mean(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Arithmetic mean; integer and bool inputs give float64, as numpy does; differentiable."""
        return as_tensor(value).mean(axis=axis, keepdims=keepdims)

    def sum(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over the given axes; differentiable."""
        return as_tensor(value).sum(axis=axis, keepdims=keepdims)

    def reshape(self, value: Any, shape: Sequence[int]) -> Tensor:
        """The same values in a new shape; differentiable."""
        return as_tensor(value).reshape(tuple(shape))

    def detach(self, value: Any) -> Any:
        """The same values (shared), cut from recorded operations."""
        return value.detach() if isinstance(value, Tensor) else value

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        """A scope whose operations record nothing (nests; restored on errors)."""
        return autograd.no_grad()
