"""Helpers that every backend distribution shares: one copy each, importing no ML framework.

Like the rest of :mod:`modularml.backends` they import nothing from the layers above (models,
losses...); the model-side helpers are in :mod:`modularml.models`.

- :func:`accepts_keyword`: whether a class or function takes a keyword argument (a loss's
  ``reduction``, a model class's ``input_shape``, a model's ``backend``).
- :func:`construct_loss`: the ``build_loss`` of a backend whose losses are classes or functions
  taking an optional ``reduction``.
- :func:`check_scalar_loss`: the guard of a backend's ``apply_gradients``.
- :func:`require_device`: a device's canonical name, or a :class:`~modularml.errors.DeviceError`
  when the backend cannot use it here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modularml.backends.devices import normalize_device
from modularml.errors import DeviceError, InvalidArgumentError, InvalidTypeError

__all__ = ["accepts_keyword", "check_scalar_loss", "construct_loss", "require_device"]


def accepts_keyword(fn: Callable, name: str, *, var_keyword: bool = True, default: bool = False) -> bool:
    """Whether ``fn(...)`` (a function, or a class: its constructor) takes the keyword argument ``name``.

    Args:
        fn: The callable to inspect.
        name: The keyword.
        var_keyword: Whether a ``**kwargs`` parameter counts as taking it.
        default: The answer when ``fn`` has no signature that :func:`inspect.signature` can read
            (some builtins and C extensions).

    Returns:
        bool: True if ``fn`` has a parameter called ``name`` (or, with ``var_keyword``, ``**kwargs``).
    """
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return default
    return any(p.name == name or (var_keyword and p.kind is inspect.Parameter.VAR_KEYWORD) for p in parameters)


def construct_loss(
    spec: Any,
    kwargs: Mapping[str, Any],
    reduction: str,
    *,
    backend: str,
    errors: tuple[type[Exception], ...] = (TypeError,),
) -> Callable[..., Any]:
    """Instantiate a loss class (with ``reduction`` where it takes one), or bind ``kwargs`` to a loss function.

    ``reduction`` is passed only when ``kwargs`` do not set it and the loss takes it (or ``**kwargs``).

    Args:
        spec: A loss class or function.
        kwargs: Keyword arguments of its constructor (bound to a function with :func:`functools.partial`).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        backend: The backend's name, for messages.
        errors: The exceptions a class's constructor raises for arguments that do not fit.

    Returns:
        The loss callable.

    Raises:
        InvalidTypeError: If ``spec`` is neither a class nor callable.
        InvalidArgumentError: If ``kwargs`` do not fit the loss class.
    """
    if not callable(spec):
        raise InvalidTypeError(f"A {backend} loss is a class or a function; got {spec!r}.")
    options = dict(kwargs)
    if "reduction" not in options and accepts_keyword(spec, "reduction"):
        options["reduction"] = reduction
    if not isinstance(spec, type):
        return functools.partial(spec, **options) if options else spec
    try:
        return spec(**options)
    except errors as exc:
        raise InvalidArgumentError(f"Cannot construct the loss {spec.__name__} with {options}: {exc}") from exc


def check_scalar_loss(loss: Any, *, is_scalar: bool, requires_grad: bool) -> None:
    """Check that a loss handed to ``apply_gradients`` is a one-element native tensor that recorded operations.

    Args:
        loss: The loss value.
        is_scalar: Whether ``loss`` is a native tensor of the backend with one element.
        requires_grad: Whether it recorded operations that gradients flow through (read only
            when ``is_scalar``).

    Raises:
        InvalidArgumentError: If ``loss`` is not a one-element tensor, or recorded no operations.
    """
    if not is_scalar:
        shape = tuple(getattr(loss, "shape", ())) if hasattr(loss, "shape") else None
        raise InvalidArgumentError(
            f"apply_gradients needs the loss as a one-element (scalar) tensor; got {type(loss).__name__} of shape "
            f"{shape}. Reduce it first with backend.mean() or backend.sum()."
        )
    if not requires_grad:
        raise InvalidArgumentError(
            "The loss recorded no operations, so there is nothing to backpropagate: compute it inside "
            "gradient_scope() and outside no_grad(), from parameters that require gradients."
        )


def require_device(device: str | None, available: Callable[[], Sequence[str]], *, backend: str) -> str:
    """The canonical name of ``device`` (``None`` is the CPU), checked against the devices available here.

    Args:
        device: A device name as users write it (``"gpu:1"``, ``"cuda"``, ``"cpu"``), or ``None``.
        available: Lists the canonical names of the backend's available devices; not called for
            the CPU, which every backend has.
        backend: The backend's name, for the message.

    Returns:
        str: The canonical name (``"cpu"``, ``"cuda:1"``, ``"mps"``).

    Raises:
        DeviceError: If the device is unknown, or not available to the backend here (the message
            names the device as given and the available ones).
    """
    canonical = normalize_device(device)
    if canonical == "cpu":
        return canonical
    devices = list(available())
    if canonical not in devices:
        given = "" if canonical == device else f" (given as {device!r})"
        raise DeviceError(
            f"Device {canonical!r}{given} is not available to the {backend!r} backend; available devices: {devices}. "
            "Choose one of those (e.g. Accelerator('cpu')), or run where that device is visible (a machine with it, "
            f"CUDA_VISIBLE_DEVICES, a {backend} build with its support)."
        )
    return canonical
