"""Tensor operations on numpy arrays, for backends whose native values are numpy arrays.

The scikit-learn backend (and any other numpy-native backend) builds on
:class:`NumpyTensorOps`; it implements the tensor part of
:class:`~modularml.backends.protocol.BackendProtocol` and only knows the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends.devices import normalize_device
from modularml.backends.padding import PAD_MODES, PadWidth, check_pad_mode, normalize_pad_width
from modularml.backends.randomness import numpy_global_state, set_numpy_global_state
from modularml.errors import DeviceError, InvalidArgumentError

__all__ = ["NumpyTensorOps"]


class NumpyTensorOps:
    """Tensor operations whose native values are ``numpy.ndarray`` (CPU only)."""

    name = "numpy"
    trainable = False
    supports_partial_fit = False
    zero_copy_from_numpy = True

    def __init__(self) -> None:
        self._rng = np.random.default_rng()

    def available_devices(self) -> list[str]:
        return ["cpu"]

    def _check_device(self, device: str | None) -> None:
        canonical = normalize_device(device)
        if canonical != "cpu":
            given = "" if canonical == device else f" (given as {device!r})"
            raise DeviceError(
                f"Device {canonical!r}{given} is not available to the {self.name!r} backend; available "
                "devices: ['cpu']. Run its nodes on the CPU (Accelerator('cpu'), or no accelerator)."
            )

    def device_of(self, value: Any) -> str:
        return "cpu"

    def to_device(self, value: Any, device: str, *, pin_memory: bool = False) -> Any:
        """``value`` itself: numpy arrays live on the CPU, the only device here.

        Raises:
            DeviceError: For any device but ``"cpu"``.
        """
        self._check_device(device)
        return value

    def model_device(self, model: Any) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    def place_model(self, model: Any, device: str) -> None:
        """Nothing to move: models of this backend run on the CPU.

        Raises:
            DeviceError: For any device but ``"cpu"``.
        """
        self._check_device(device)

    def seed(self, seed: int) -> None:
        """Seed this backend's generator and numpy's global one (used by estimators without ``random_state``)."""
        self._rng = np.random.default_rng(seed)
        np.random.seed(seed % 2**32)

    def get_rng_state(self) -> dict[str, Any]:
        """This backend's generator (its bit generator's state) and numpy's global one."""
        return {"generator": self._rng.bit_generator.state, "numpy_global": numpy_global_state()}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore the generators of :meth:`get_rng_state`."""
        if not isinstance(state, dict) or not isinstance(state.get("generator"), dict):
            raise InvalidArgumentError(f"Not an RNG state of the {self.name!r} backend: {state!r:.120}.")
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = state["generator"]
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidArgumentError(f"Not an RNG state of the {self.name!r} backend: {exc}") from None
        set_numpy_global_state(state.get("numpy_global"))
        self._rng = rng

    def random_normal(self, shape: Sequence[int], *, dtype: DTypeLike = "float32", device: str | None = None) -> Any:
        self._check_device(device)
        return self._rng.standard_normal(tuple(shape)).astype(dtype, copy=False)

    def is_native(self, value: Any) -> bool:
        return isinstance(value, np.ndarray)

    def from_numpy(self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None) -> Any:
        self._check_device(device)
        return np.asarray(array, dtype=dtype)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def concat(self, values: Sequence[Any], axis: int = 0) -> Any:
        return np.concatenate([np.asarray(v) for v in values], axis=axis)

    def stack(self, values: Sequence[Any], axis: int = 0) -> Any:
        return np.stack([np.asarray(v) for v in values], axis=axis)

    def pad(self, value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Any:
        check_pad_mode(mode)
        array = np.asarray(value)
        widths = normalize_pad_width(pad_width, array.ndim)
        if mode == "constant":
            return np.pad(array, widths, mode="constant", constant_values=constant_value)
        for axis, (before, after) in enumerate(widths):
            if array.shape[axis] == 0 and (before or after):
                raise ValueError(f"Cannot pad empty axis {axis} in {mode!r} mode: there is nothing to copy from.")
        return np.pad(array, widths, mode=PAD_MODES[mode])

    def mean(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        if isinstance(axis, Sequence):
            axis = tuple(axis)
        return np.mean(np.asarray(value), axis=axis, keepdims=keepdims)  # ints and bools give float64

    def sum(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        if isinstance(axis, Sequence):
            axis = tuple(axis)
        return np.sum(np.asarray(value), axis=axis, keepdims=keepdims)

    def reshape(self, value: Any, shape: Sequence[int]) -> Any:
        return np.reshape(np.asarray(value), tuple(shape))

    def detach(self, value: Any) -> Any:
        return value

    @contextlib.contextmanager
    def no_grad(self) -> Iterator[None]:
        """numpy records no gradients: this scope changes nothing."""
        yield
