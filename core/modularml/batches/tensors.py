"""Backend-neutral operations on batch values: numpy arrays, backend tensors, or dicts of them.

A batch domain (features, targets, ...) holds ``None``, one array/tensor, or a mapping of column
key -> array/tensor. Everything framework-specific goes through the backend protocol
(:func:`modularml.backends.backend_of` finds the backend owning a tensor without importing any
framework). Text (object or unicode arrays) always stays numpy: no framework holds strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modularml.data.formats import DICT_NUMPY_FORMATS, NUMPY_FORMATS, PANDAS_FORMATS, stack_columns
from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "TargetFormat",
    "concat_values",
    "convert_value",
    "detach_value",
    "leading_dim",
    "map_value",
    "resolve_format",
    "to_numpy",
]


@dataclass(frozen=True)
class TargetFormat:
    """A resolved ``fmt``: the backend to convert to (``None`` for numpy) and whether dicts are kept.

    Attributes:
        name: The format as given (lower case).
        backend: The backend implementation, or ``None`` for numpy.
        as_dict: Keep column dicts (``"dict_numpy"``, ``"dict_torch"``) instead of stacking them.
        device: Device for backend tensors (``None``: the backend's default). Native tensors on
            another device are moved there (:meth:`BackendProtocol.to_device`).
        pin_memory: Copy host arrays to ``device`` through page-locked memory, asynchronously
            (where the backend supports it).
    """

    name: str
    backend: Any = None
    as_dict: bool = False
    device: str | None = None
    pin_memory: bool = False

    @property
    def is_numpy(self) -> bool:
        """Whether values become numpy arrays."""
        return self.backend is None


_NUMPY_TARGETS = {
    **{name: TargetFormat(name) for name in NUMPY_FORMATS},
    **{name: TargetFormat(name, as_dict=True) for name in DICT_NUMPY_FORMATS},
}


def _format_name(fmt: Any) -> str:
    if type(fmt) is str:
        return fmt.lower()
    if not isinstance(fmt, str):
        fmt = getattr(fmt, "value", fmt)
    if not isinstance(fmt, str):
        raise InvalidTypeError(f"fmt is a format name such as 'numpy', 'dict_numpy' or 'torch'; got {fmt!r}.")
    return fmt.lower()


def resolve_format(fmt: Any, *, device: str | None = None) -> TargetFormat:
    """Resolve a batch format name: ``"numpy"``/``"np"``, ``"dict_numpy"``, or a backend's (``"torch"``, ``"dict_tf"``).

    Raises:
        InvalidArgumentError: For ``"pandas"`` (a batch holds arrays) or an unknown name; the
            message lists the formats available here.
    """
    if isinstance(fmt, TargetFormat) and device is None:
        return fmt
    key = _format_name(fmt)
    if device is None:
        known = _NUMPY_TARGETS.get(key)
        if known is not None:
            return known
    from modularml.backends import backend_for_format, get_backend

    if key in NUMPY_FORMATS:
        return TargetFormat(key)
    if key in DICT_NUMPY_FORMATS:
        return TargetFormat(key, as_dict=True)
    if key in PANDAS_FORMATS:
        raise InvalidArgumentError(
            f"A batch holds arrays or tensors, not DataFrames; got fmt={fmt!r}. Use 'numpy', 'dict_numpy' or a "
            "backend format such as 'torch'."
        )
    backend = backend_for_format(key)
    if backend is not None:
        return TargetFormat(key, get_backend(backend), device=device)
    if key.startswith("dict_"):
        backend = backend_for_format(key[5:])
        if backend is not None:
            return TargetFormat(key, get_backend(backend), as_dict=True, device=device)
    from modularml.data.formats import available_formats

    usable = [f for f in available_formats() if f not in PANDAS_FORMATS]
    raise InvalidArgumentError(f"Unknown batch format {fmt!r}. Available here: {usable}.")


def backend_format(backend: Any, *, device: str | None = None, pin_memory: bool = False) -> TargetFormat:
    """The :class:`TargetFormat` of a backend given by name, :class:`~modularml.Backend` or implementation."""
    from modularml.backends import get_backend

    impl = get_backend(backend) if isinstance(backend, str) else backend
    if not hasattr(impl, "from_numpy"):
        raise InvalidTypeError(f"backend is a backend name (e.g. 'torch') or implementation; got {backend!r}.")
    return TargetFormat(str(getattr(impl, "name", "backend")), impl, device=device, pin_memory=pin_memory)


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array of ``value`` (a backend tensor is converted by its backend: detached, on the CPU)."""
    if isinstance(value, np.ndarray):
        return value
    from modularml.backends import backend_of

    backend = backend_of(value)
    if backend is not None:
        return backend.implementation.to_numpy(value)
    return np.asarray(value)


def _is_text(array: np.ndarray) -> bool:
    return array.dtype == object or array.dtype.kind in "US"


def _convert_array(value: Any, target: TargetFormat) -> Any:
    if target.backend is None:
        return value if type(value) is np.ndarray else to_numpy(value)
    impl = target.backend
    if impl.is_native(value):
        if target.device is None:
            return value
        return impl.to_device(value, target.device, pin_memory=target.pin_memory)
    array = to_numpy(value)
    if _is_text(array):
        return array
    if target.pin_memory and target.device is not None:
        return impl.to_device(impl.from_numpy(array), target.device, pin_memory=True)
    return impl.from_numpy(array, device=target.device)


def map_value(value: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` to an array, to every array of a mapping, or pass ``None`` through."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {key: fn(item) for key, item in value.items()}
    return fn(value)


def convert_value(value: Any, target: TargetFormat) -> Any:
    """``value`` as arrays of ``target``'s kind; a mapping is kept with ``target.as_dict``, else stacked on axis 1."""
    if value is None:
        return None
    if type(value) is np.ndarray:  # the common case first: no abstract-class check per array
        return value if target.backend is None else _convert_array(value, target)
    if isinstance(value, Mapping):
        if target.as_dict:
            return {key: _convert_array(item, target) for key, item in value.items()}
        if not value:
            return None
        if len(value) == 1:
            return _convert_array(next(iter(value.values())), target)
        return _convert_array(stack_columns({key: to_numpy(item) for key, item in value.items()}), target)
    return _convert_array(value, target)


def detach_value(value: Any) -> Any:
    """``value`` without autograd history (numpy arrays and text are returned as they are)."""

    def detach(item: Any) -> Any:
        if isinstance(item, np.ndarray) or getattr(item, "requires_grad", None) is False:
            return item  # nothing to detach from (a tensor made under no-grad: detaching would only copy it)
        from modularml.backends import backend_of

        backend = backend_of(item)
        return item if backend is None else backend.implementation.detach(item)

    return map_value(value, detach)


def _concat_arrays(values: Sequence[Any], what: str) -> Any:
    if all(isinstance(v, np.ndarray) for v in values):
        return np.concatenate(values, axis=0)
    from modularml.backends import backend_of

    owner = next((b for b in map(backend_of, values) if b is not None), None)
    if owner is None:
        return np.concatenate([np.asarray(v) for v in values], axis=0)
    impl = owner.implementation
    return impl.concat([v if impl.is_native(v) else impl.from_numpy(to_numpy(v)) for v in values], axis=0)


def concat_values(values: Sequence[Any], what: str) -> Any:
    """Join the values of one domain from several batches along the batch axis.

    Raises:
        InvalidArgumentError: If some values are ``None`` and others are not, or dict keys differ.
    """
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        raise InvalidArgumentError(
            f"Cannot concatenate {what}: it is missing (None) in some batches and present in others."
        )
    if isinstance(values[0], Mapping):
        keys = list(values[0])
        for value in values[1:]:
            if not isinstance(value, Mapping) or list(value) != keys:
                got = list(value) if isinstance(value, Mapping) else type(value).__name__
                raise InvalidArgumentError(f"Cannot concatenate {what}: one batch has keys {keys}, another {got}.")
        return {key: _concat_arrays([v[key] for v in values], f"{what}[{key!r}]") for key in keys}
    return _concat_arrays(values, what)


def leading_dim(value: Any) -> int | None:
    """Batch size of a value (its first dimension; all arrays of a mapping must agree), or None.

    Raises:
        InvalidArgumentError: If arrays of a mapping have different lengths.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        sizes = {key: leading_dim(item) for key, item in value.items()}
        distinct = {s for s in sizes.values() if s is not None}
        if len(distinct) > 1:
            raise InvalidArgumentError(f"Arrays of one domain have different batch sizes: {sizes}.")
        return distinct.pop() if distinct else None
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        first = shape[0]
        return None if first is None else int(first)
    return len(value)


def per_sample_shape(value: Any) -> Any:
    """Shape of one sample (the shape without the batch axis), per key for a mapping; None for None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {key: per_sample_shape(item) for key, item in value.items()}
    return tuple(int(d) for d in tuple(value.shape)[1:])
