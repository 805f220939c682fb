"""The learned state of scikit-learn-like objects as plain values: numpy arrays and JSON, never pickle.

A fitted scikit-learn-style object keeps what it learned in attributes that ``fit`` sets, by
convention named with a trailing underscore (``mean_``, ``scale_``); a few keep helpers in
private attributes (a nested estimator, an output configuration). This module captures every
attribute that a freshly constructed instance does not have, plus every ``*_`` attribute, as
numpy arrays and JSON values, and restores them with ``setattr`` on a fresh instance built from
the constructor parameters (``get_params()``). It knows no particular library.

Values are encoded as follows (the ModularML container stores arrays as ``.npy``):

- ``None``, ``bool``, ``int``, ``float``, ``str``: as they are;
- numpy arrays: as they are (text arrays are stored as Arrow strings, never pickled);
- numpy scalars: ``{"__mml_numpy_scalar__": <0-d array>}``, so the dtype survives;
- lists, tuples and dicts with string keys: element by element;
- a nested scikit-learn-like object (it has ``get_params`` and ``fit``):
  ``{"__mml_object__": "module:QualName", "params": ..., "state": ...}``.

Anything else (a function, a lock, an arbitrary object) cannot be captured and raises an error
naming the attribute.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from modularml.errors import SerializationError

__all__ = [
    "class_path",
    "constructor_params",
    "decode_value",
    "encode_value",
    "estimator_root",
    "get_learned_state",
    "has_learned_state",
    "is_sklearn_like",
    "is_nestable_class",
    "is_sklearn_like_class",
    "set_learned_state",
]

_NUMPY_SCALAR = "__mml_numpy_scalar__"
_OBJECT = "__mml_object__"


def is_sklearn_like(obj: Any) -> bool:
    """Whether ``obj`` (an instance) has callable ``fit`` and ``transform`` methods."""
    return callable(getattr(obj, "fit", None)) and callable(getattr(obj, "transform", None))


def is_sklearn_like_class(cls: type) -> bool:
    """Whether ``cls`` is a scikit-learn-like class (callable ``fit`` and ``transform``)."""
    return isinstance(cls, type) and callable(getattr(cls, "fit", None)) and callable(getattr(cls, "transform", None))


def class_path(cls: type) -> str:
    """``"module:QualName"`` of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def constructor_params(obj: Any) -> dict[str, Any] | None:
    """The keyword arguments that rebuild ``obj`` unfitted, or ``None`` if they cannot be found.

    Uses ``obj.get_params(deep=False)`` where it exists (the scikit-learn convention); otherwise
    reads, for each parameter of ``type(obj).__init__``, the instance attribute of the same name.

    Args:
        obj: An instance.

    Returns:
        dict[str, Any] | None: Parameter name -> value, or ``None`` if a required parameter
        has no attribute of its name.
    """
    get_params = getattr(obj, "get_params", None)
    if callable(get_params):
        try:
            return dict(get_params(deep=False))
        except TypeError:
            return dict(get_params())
    try:
        signature = inspect.signature(type(obj).__init__)
    except (TypeError, ValueError):
        return None
    attributes = vars(obj) if hasattr(obj, "__dict__") else {}
    params: dict[str, Any] = {}
    for name, parameter in list(signature.parameters.items())[1:]:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if name in attributes:
            params[name] = attributes[name]
        elif parameter.default is inspect.Parameter.empty:
            return None
    return params


def _learned_names(obj: Any, baseline: Collection[str] | None) -> list[str]:
    attributes = vars(obj) if hasattr(obj, "__dict__") else {}
    names = []
    for name in attributes:
        if name.startswith("__"):
            continue
        public_learned = name.endswith("_") and not name.startswith("_")
        if public_learned or (baseline is not None and name not in baseline):
            names.append(name)
    return names


def _baseline(obj: Any) -> set[str] | None:
    """Attribute names of a fresh, unfitted instance of ``type(obj)`` (``None`` if none can be built)."""
    params = constructor_params(obj)
    if params is None:
        return None
    try:
        fresh = type(obj)(**params)
    except Exception:  # a user class that cannot be rebuilt: fall back to '*_' names only
        return None
    return set(vars(fresh)) if hasattr(fresh, "__dict__") else set()


def get_learned_state(obj: Any) -> dict[str, Any]:
    """Capture what ``obj`` learned by fitting, encoded as arrays and JSON values.

    Args:
        obj: A (fitted) scikit-learn-like instance.

    Returns:
        dict[str, Any]: Attribute name -> encoded value (see the module documentation).

    Raises:
        SerializationError: If a learned attribute holds a value that cannot be stored without
            pickling; the message names the attribute.
    """
    baseline = _baseline(obj)
    name = type(obj).__name__
    return {attr: encode_value(getattr(obj, attr), f"{name}.{attr}") for attr in _learned_names(obj, baseline)}


def has_learned_state(obj: Any) -> bool:
    """Whether ``obj`` has any public learned attribute (a ``*_`` name), i.e. looks fitted."""
    return bool(_learned_names(obj, None))


def is_nestable_class(cls: type) -> bool:
    """Whether ``cls`` is a class whose instances :func:`encode_value` nests (``get_params`` and ``fit``)."""
    return isinstance(cls, type) and callable(getattr(cls, "get_params", None)) and callable(getattr(cls, "fit", None))


def estimator_root(cls: type) -> type | Callable[[type], bool]:
    """The kind a nested object in the learned state or parameters of a ``cls`` instance must be of.

    The most basic class of ``cls``'s own top-level package that defines ``get_params`` (for a
    scikit-learn estimator, ``sklearn.base.BaseEstimator``); where that is ``cls`` itself or there is
    none (a duck-typed class), the structural check :func:`is_nestable_class`.
    """
    top = cls.__module__.split(".")[0]
    root: type | None = None
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == top and "get_params" in vars(klass):
            root = klass
    return root if root is not None and root is not cls else is_nestable_class


def set_learned_state(obj: Any, state: Mapping[str, Any], *, base: type | Callable[[type], bool] | None = None) -> None:
    """Restore attributes captured by :func:`get_learned_state` onto ``obj`` (a fresh instance).

    Every value is decoded first; ``obj`` is changed only when all of them decoded.

    Args:
        obj: The instance to restore onto, usually freshly built from its constructor params.
        state: What :func:`get_learned_state` returned (possibly read back from a file).
        base: The class nested objects must derive from; defaults to :func:`estimator_root` of
            ``obj``'s class.

    Raises:
        SerializationError: If the state is malformed or names a class that may not be used.
    """
    if not isinstance(state, Mapping):
        raise SerializationError(f"The learned state of {type(obj).__name__} is a dict; got {state!r:.200}.")
    base = estimator_root(type(obj)) if base is None else base
    decoded = {}
    for attr, value in state.items():
        if not isinstance(attr, str) or not attr.isidentifier() or attr.startswith("__"):
            raise SerializationError(f"Invalid learned attribute name {attr!r} in the state of {type(obj).__name__}.")
        decoded[attr] = decode_value(value, base=base, where=f"{type(obj).__name__}.{attr}")
    for attr, value in decoded.items():
        setattr(obj, attr, value)


def encode_value(value: Any, where: str) -> Any:
    """Encode one attribute value as arrays and JSON values (see the module documentation).

    Raises:
        SerializationError: If the value (or a part of it) cannot be stored without pickling.
    """
    if isinstance(value, np.generic):  # first: np.float64 is also a float
        return {_NUMPY_SCALAR: np.asarray(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject and not all(isinstance(v, str) for v in value.reshape(-1)):
            raise SerializationError(
                f"{where} is an object array that does not hold only strings; it cannot be stored without pickling."
            )
        return np.array(value)
    if isinstance(value, tuple):
        return tuple(encode_value(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, list):
        return [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(f"{where} has the non-string key {key!r}; it cannot be stored.")
            out[key] = encode_value(item, f"{where}[{key!r}]")
        return out
    if callable(getattr(value, "get_params", None)) and callable(getattr(value, "fit", None)):
        params = constructor_params(value) or {}
        return {
            _OBJECT: class_path(type(value)),
            "params": encode_value(params, f"{where}.params"),
            "state": get_learned_state(value),
        }
    raise SerializationError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be stored without pickling: "
        "learned state must be numpy arrays, numbers, strings, lists or dicts of them, or nested "
        "scikit-learn-like objects."
    )


def decode_value(value: Any, *, base: type | Callable[[type], bool] | None, where: str = "value") -> Any:
    """Inverse of :func:`encode_value`; arrays come back as writable copies.

    A nested object is rebuilt only from a class that :func:`modularml.plugins.resolver.resolve`
    accepts as a subclass of ``base`` (looked up by its own module and qualified name, from an
    allowed distribution), constructed with its saved plain-data parameters.

    Args:
        value: An encoded value (plain data from a file or from :func:`encode_value`).
        base: The class nested objects must derive from, or a predicate on their class (usually
            :func:`estimator_root` of the owner's class); ``None`` refuses nested objects.
        where: Where the value sits, for messages.

    Raises:
        SerializationError: If a nested object is malformed, names a class that may not be used, or
            cannot be rebuilt from its parameters.
    """
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, list):
        return [decode_value(v, base=base, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(decode_value(v, base=base, where=f"{where}[{i}]") for i, v in enumerate(value))
    if not isinstance(value, Mapping):
        return value
    if _NUMPY_SCALAR in value:
        scalar = value[_NUMPY_SCALAR]
        if len(value) != 1 or not isinstance(scalar, np.ndarray) or scalar.shape != ():
            raise SerializationError(f"{where} is a malformed numpy scalar (expected a 0-d array); got {value!r:.200}.")
        return scalar[()]
    if _OBJECT in value:
        return _rebuild(value, base, where)
    return {k: decode_value(v, base=base, where=f"{where}[{k!r}]") for k, v in value.items()}


def _rebuild(value: Mapping[str, Any], base: type | Callable[[type], bool] | None, where: str) -> Any:
    from modularml.plugins.resolver import resolve

    if set(value) - {_OBJECT, "params", "state"}:
        raise SerializationError(f"{where} is a malformed nested object: unexpected keys {sorted(set(value))}.")
    if base is None:
        raise SerializationError(f"{where} holds a nested object ({value[_OBJECT]!r:.200}), which is not allowed here.")
    cls = resolve(value[_OBJECT], what="nested estimator class", entry=where, base=base)
    params = value.get("params") or {}
    state = value.get("state") or {}
    if not isinstance(params, Mapping) or not isinstance(state, Mapping):
        raise SerializationError(f"{where} is a malformed nested object: 'params' and 'state' must be dicts.")
    kwargs = decode_value(dict(params), base=base, where=f"{where}.params")
    if not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
        raise SerializationError(f"{where} has parameter names that are not identifiers: {sorted(map(str, kwargs))}.")
    try:
        obj = cls(**kwargs)
    except Exception as exc:
        raise SerializationError(
            f"Cannot rebuild {value[_OBJECT]!r} at {where} from its saved parameters: {type(exc).__name__}: {exc}"
        ) from None
    set_learned_state(obj, state, base=base)
    return obj
