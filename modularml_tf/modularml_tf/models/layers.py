"""Building blocks shared by the built-in Keras models."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import keras

from modularml.backends.components import find_component
from modularml.errors import InvalidArgumentError

__all__ = ["make_activation"]

_NO_ACTIVATION = frozenset({"none", "identity", "linear"})
_NOT_ACTIVATIONS = frozenset({"deserialize", "get", "serialize", "glu", "threshold", "softmax", "log_softmax"})

#: Where Keras' default differs from ``torch.nn``'s, the torch one, so that a name means one function
#: in every backend (``nn.LeakyReLU`` has slope 0.01, Keras' ``leaky_relu`` 0.2).
_TORCH_DEFAULTS: dict[str, dict[str, Any]] = {"leaky_relu": {"negative_slope": 0.01}}


def make_activation(activation: str | Callable[..., Any] | None) -> Callable[..., Any]:
    """The activation function of a name (``"relu"``, ``"leaky_relu"``, ``"GELU"``), a callable, or ``None``.

    Names match the functions of ``keras.activations`` ignoring case and underscores (``"LeakyReLU"``
    is ``leaky_relu``), with ``torch.nn``'s defaults where Keras' differ; ``None``, ``"none"``,
    ``"identity"`` and ``"linear"`` give the identity.

    Raises:
        NotRegisteredError: For an unknown name; the message lists the available ones.
        InvalidArgumentError: For anything that is neither a name nor a callable.
    """
    if activation is None or (isinstance(activation, str) and activation.lower() in _NO_ACTIVATION):
        return keras.activations.linear
    if not isinstance(activation, str):
        if callable(activation):
            return activation
        raise InvalidArgumentError(f"An activation is a name such as 'relu', a callable, or None; got {activation!r}.")
    functions = {
        name: getattr(keras.activations, name)
        for name in dir(keras.activations)
        if not name.startswith("_") and name not in _NOT_ACTIVATIONS and callable(getattr(keras.activations, name))
    }
    found = find_component(activation, functions, what="activation", backend="tensorflow")
    defaults = _TORCH_DEFAULTS.get(found.__name__)
    return functools.partial(found, **defaults) if defaults else found
