"""Building blocks shared by the built-in torch models."""

from __future__ import annotations

from typing import Any

import torch.nn.modules.activation as _activations
from torch import nn

from modularml.backends.components import find_component
from modularml.errors import InvalidArgumentError

__all__ = ["make_activation"]

_NO_ACTIVATION = frozenset({"none", "identity", "linear"})


def make_activation(activation: str | type[nn.Module] | None) -> nn.Module:
    """A new activation layer from a name (``"relu"``, ``"leaky_relu"``, ``"GELU"``), a class, or ``None``.

    Names match the ``torch.nn`` activation classes ignoring case and underscores; ``None``,
    ``"none"``, ``"identity"`` and ``"linear"`` give ``nn.Identity``.

    Raises:
        NotRegisteredError: For an unknown name; the message lists the available ones.
        InvalidArgumentError: For anything that is not a name or an ``nn.Module`` class.
    """
    if activation is None or (isinstance(activation, str) and activation.lower() in _NO_ACTIVATION):
        return nn.Identity()
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    if not isinstance(activation, str):
        raise InvalidArgumentError(
            f"An activation is a name such as 'relu', an nn.Module class, or None; got {activation!r}."
        )
    classes: dict[str, Any] = {
        name: getattr(_activations, name)
        for name in _activations.__all__
        if name not in ("MultiheadAttention", "Threshold", "GLU")
    }
    return find_component(activation, classes, what="activation", backend="torch")()
