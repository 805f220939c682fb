"""The PyTorch backend: ``torch.Tensor`` as native values, on the CPU, CUDA devices or MPS."""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import DTypeLike

from modularml.backends import normalize_pad_width, pad_index_map
from modularml.backends.common import require_device
from modularml.backends.padding import PadWidth, check_pad_mode
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml_torch.training import TorchTraining, as_torch_dtype

__all__ = ["TorchBackend"]

#: torch floating dtypes numpy has no equivalent for; :meth:`TorchBackend.to_numpy` gives float32.
_NUMPY_LESS_FLOATS = frozenset(
    getattr(torch, name)
    for name in ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu")
    if hasattr(torch, name)
)


class TorchBackend(TorchTraining):
    """Backend for PyTorch.

    Native values are ``torch.Tensor``. Models learn by gradient steps (``trainable``), not by
    ``partial_fit``; :meth:`from_numpy` shares memory with contiguous, writeable CPU arrays.
    The whole :class:`~modularml.backends.TrainableBackendProtocol` is implemented
    (:class:`~modularml_torch.training.TorchTraining`): ``nn.Module`` objects are wrapped in
    :class:`~modularml_torch.models.TorchModelWrapper`, losses and optimizers are found among the
    registered short names and then ``torch.nn``/``torch.optim``.
    """

    name = "torch"
    trainable = True
    supports_partial_fit = False
    zero_copy_from_numpy = True
    framework_version = torch.__version__

    # -- devices and randomness ---------------------------------------------------------
    def available_devices(self) -> list[str]:
        """``"cpu"``, then ``"cuda:<i>"`` for each visible CUDA device, then ``"mps"`` if available."""
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices.extend(f"cuda:{i}" for i in range(torch.cuda.device_count()))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            devices.append("mps")
        return devices

    def _check_device(self, device: str | None) -> str:
        """The canonical name of ``device``; raise :class:`DeviceError` if it is not available here."""
        return require_device(device, self.available_devices, backend=self.name)

    def device_of(self, value: Any) -> str:
        """Canonical device name of a tensor (``"cpu"``, ``"cuda:<i>"``, ``"mps"``); numpy arrays are ``"cpu"``."""
        if not isinstance(value, torch.Tensor):
            return "cpu"
        device = value.device
        if device.type == "cuda":
            return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
        if device.type in ("cpu", "mps"):
            return device.type
        return str(device)

    def to_device(self, value: torch.Tensor, device: str, *, pin_memory: bool = False) -> torch.Tensor:
        """``value`` on ``device`` (itself when it is there already).

        With ``pin_memory``, a CPU tensor going to a CUDA device is copied into page-locked memory
        first and then to the device without blocking (``Tensor.pin_memory``, ``non_blocking``).

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        target = self._check_device(device)
        if self.device_of(value) == target:
            return value
        if pin_memory and target.startswith("cuda") and value.device.type == "cpu":
            return value.pin_memory().to(target, non_blocking=True)
        return value.to(target)

    def model_device(self, model: Any) -> str:
        """The device of a torch model's parameters (where they will be created, before it is built)."""
        return str(getattr(model, "device", None) or "cpu")

    def place_model(self, model: Any, device: str) -> None:
        """Move a torch model (a :class:`~modularml_torch.models.TorchBaseModel`) to ``device``.

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
            InvalidTypeError: If ``model`` is not a ModularML torch model.
        """
        to_device = getattr(model, "to_device", None)
        if not callable(to_device):
            raise InvalidTypeError(
                f"The torch backend places ModularML torch models (TorchBaseModel); got {type(model).__name__}."
            )
        to_device(self._check_device(device))

    def seed(self, seed: int) -> None:
        """Seed torch's generators on every device (``torch.manual_seed``, ``torch.cuda.manual_seed_all``)."""
        torch.manual_seed(seed)
        torch.cuda.manual_seed_all(seed)

    def get_rng_state(self) -> dict[str, Any]:
        """torch's CPU generator and, where CUDA is available, every CUDA device's (``uint8`` arrays)."""
        cuda = [t.numpy().copy() for t in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []
        return {"cpu": torch.get_rng_state().numpy().copy(), "cuda": cuda}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_rng_state` output; CUDA states are restored where this machine has those devices.

        A state saved with CUDA devices restores only the CPU generator on a machine without them
        (a warning says so): a run resumed there draws its CPU randomness exactly, its GPU randomness anew.
        """
        if not isinstance(state, dict) or not isinstance(state.get("cpu"), np.ndarray):
            raise InvalidArgumentError(f"Not an RNG state of the torch backend: {state!r:.120}.")
        cpu = torch.from_numpy(np.array(state["cpu"], dtype=np.uint8))
        cuda = [torch.from_numpy(np.array(a, dtype=np.uint8)) for a in state.get("cuda") or []]
        try:
            torch.set_rng_state(cpu)
        except RuntimeError as exc:
            raise InvalidArgumentError(f"Not an RNG state of the torch backend: {exc}") from None
        if cuda:
            here = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if here >= len(cuda):
                for index, value in enumerate(cuda):
                    torch.cuda.set_rng_state(value, index)
            else:
                warnings.warn(
                    f"The RNG state was saved with {len(cuda)} CUDA device(s); this machine has {here}. Only the CPU "
                    "generator is restored.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def random_normal(
        self, shape: Sequence[int], *, dtype: DTypeLike | torch.dtype = "float32", device: str | None = None
    ) -> torch.Tensor:
        """Standard normal draws from torch's generator of ``device``.

        A non-floating ``dtype`` draws float32 values and casts them, as numpy's ``astype`` does.
        """
        target = self._check_device(device)
        torch_dtype = as_torch_dtype(dtype)
        if torch_dtype.is_floating_point or torch_dtype.is_complex:
            return torch.randn(tuple(shape), dtype=torch_dtype, device=target)
        return torch.randn(tuple(shape), dtype=torch.float32, device=target).to(torch_dtype)

    # -- conversion -------------------------------------------------------------------------
    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is a ``torch.Tensor`` (parameters included)."""
        return isinstance(value, torch.Tensor)

    def from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | torch.dtype | None = None, device: str | None = None
    ) -> torch.Tensor:
        """Convert a numpy array to a tensor on ``device``.

        On the CPU, a C-contiguous, writeable array in native byte order is shared, not copied:
        writes to one show in the other. Other arrays (views with strides, read-only arrays) are
        copied first. ``dtype`` may also be a torch dtype (``torch.bfloat16``); it is then applied
        after the conversion.

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        target = self._check_device(device)
        torch_dtype = dtype if isinstance(dtype, torch.dtype) else None
        array = np.asarray(array, dtype=None if torch_dtype is not None else dtype)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not (array.flags.c_contiguous and array.flags.writeable):
            array = np.array(array, order="C", copy=True)
        tensor = torch.from_numpy(array)
        if torch_dtype is not None or target != "cpu":
            tensor = tensor.to(device=target, dtype=torch_dtype)
        return tensor

    def to_numpy(self, value: Any) -> np.ndarray:
        """Convert a tensor to numpy: detached, on the CPU; numpy arrays pass through unchanged.

        CPU tensors share memory with the result. Floating dtypes numpy lacks (``bfloat16``,
        the ``float8`` types) become float32.
        """
        if isinstance(value, np.ndarray):
            return value
        if not isinstance(value, torch.Tensor):
            return np.asarray(value)
        tensor = value.detach()
        if tensor.dtype in _NUMPY_LESS_FLOATS:
            tensor = tensor.to(torch.float32)
        return tensor.numpy(force=True)

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[torch.Tensor], axis: int = 0) -> torch.Tensor:
        """Join tensors along an existing axis (``torch.cat``)."""
        values = list(values)
        if not values:
            raise ValueError("concat needs at least one tensor.")
        return torch.cat(values, dim=axis)

    def stack(self, values: Sequence[torch.Tensor], axis: int = 0) -> torch.Tensor:
        """Join tensors along a new axis (``torch.stack``)."""
        values = list(values)
        if not values:
            raise ValueError("stack needs at least one tensor.")
        return torch.stack(values, dim=axis)

    def pad(
        self, value: torch.Tensor, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0
    ) -> torch.Tensor:
        """Pad a tensor like ``np.pad``, in any number of dimensions; differentiable.

        ``"constant"`` uses ``torch.nn.functional.pad``; the other modes gather along each padded
        axis with the index maps of :func:`~modularml.backends.pad_index_map`, so any pad width
        works (circular padding wider than the axis included).

        Raises:
            ValueError: For an unknown mode, bad widths, or a non-constant mode on an empty axis.
        """
        check_pad_mode(mode)
        widths = normalize_pad_width(pad_width, value.ndim)
        if mode == "constant":
            # F.pad takes (before, after) pairs starting from the last axis.
            flat = [width for pair in reversed(widths) for width in pair]
            return F.pad(value, flat, mode="constant", value=constant_value)
        result = value
        for axis, (before, after) in enumerate(widths):
            if not (before or after):
                continue
            size = result.shape[axis]
            if size == 0:
                raise ValueError(f"Cannot pad empty axis {axis} in {mode!r} mode: there is nothing to copy from.")
            index = torch.from_numpy(pad_index_map(size, before, after, mode)).to(result.device)
            result = result.index_select(axis, index)
        return result.clone() if result is value else result

    def mean(
        self, value: torch.Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> torch.Tensor:
        """Arithmetic mean over the given axes (all axes when ``None``).

        Integer and bool tensors are averaged in torch's default float dtype (float32 unless
        changed), not in float64 as numpy does: float64 is slow on GPUs and missing on MPS.
        """
        dtype = None if (value.is_floating_point() or value.is_complex()) else torch.get_default_dtype()
        if axis is None:
            result = torch.mean(value, dtype=dtype)
            return result.reshape((1,) * value.ndim) if keepdims else result
        dims = tuple(operator.index(a) for a in axis) if isinstance(axis, Sequence) else (operator.index(axis),)
        if not dims:  # torch reduces every axis for dim=(); numpy reduces none
            return value.to(dtype) if dtype is not None else value.clone()
        return torch.mean(value, dim=dims, keepdim=keepdims, dtype=dtype)

    def sum(self, value: torch.Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> torch.Tensor:
        """Sum over the given axes (all axes when ``None``), like ``np.sum`` (``torch.sum``)."""
        if axis is None:
            result = torch.sum(value)
            return result.reshape((1,) * value.ndim) if keepdims else result
        dims = tuple(operator.index(a) for a in axis) if isinstance(axis, Sequence) else (operator.index(axis),)
        if not dims:  # torch reduces every axis for dim=(); numpy reduces none
            return value.clone()
        return torch.sum(value, dim=dims, keepdim=keepdims)

    def reshape(self, value: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """The same values in a new shape (``Tensor.reshape``; a view where possible)."""
        return value.reshape(tuple(shape))  # torch takes ints and anything with __index__, refuses floats

    def detach(self, value: torch.Tensor) -> torch.Tensor:
        """The same values, sharing memory, with no link to the autograd graph."""
        return value.detach() if isinstance(value, torch.Tensor) else value

    def no_grad(self) -> AbstractContextManager[Any]:
        """A ``torch.no_grad()`` scope: tensors computed in it do not require gradients."""
        return torch.no_grad()
