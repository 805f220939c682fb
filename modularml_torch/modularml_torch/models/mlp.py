"""``SequentialMLP``: a multilayer perceptron over flattened samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from modularml.errors import InvalidArgumentError
from modularml_torch.models.base import TorchBaseModel
from modularml_torch.models.layers import make_activation

__all__ = ["SequentialMLP"]


class SequentialMLP(TorchBaseModel):
    """A multilayer perceptron of ``n_layers`` Linear layers: each sample is flattened, passed through
    ``n_layers - 1`` hidden layers (``Linear`` → optional ``BatchNorm1d`` → activation → optional
    ``Dropout``) and a linear output layer, and reshaped to ``output_shape``.

    ``n_layers`` counts the Linear layers, the output layer included, as the older ModularML did:
    ``SequentialMLP(n_layers=3, hidden_dim=64)`` on 32 inputs and 1 output is 32 → 64 → 64 → 1
    (6,337 parameters). The TensorFlow backend's ``SequentialMLP`` takes the same arguments.

    Shapes left out are inferred when the model is built (ModularML does that from the data);
    ``output_shape`` must be known by then.

    Args:
        input_shape: Per-sample input shape, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        n_layers: Number of Linear layers, the output layer included (1 gives a linear model).
        hidden_dim: Width of every hidden layer.
        activation: Activation after each hidden layer, by name (``"relu"``, ``"gelu"``, ``"tanh"``, ...).
        dropout: Dropout probability after each hidden layer (0 disables it).
        batch_norm: Whether to normalise each hidden layer's outputs with ``BatchNorm1d``.

    Example:
        >>> model = SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64)
        >>> model.build(input_shape=(32,))
        >>> y = model(x)  # x: (batch, 32) -> y: (batch, 1)
    """

    requires_output_shape = True

    def __init__(
        self,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
        n_layers: int = 2,
        hidden_dim: int = 32,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(
            input_shape=input_shape,
            output_shape=output_shape,
            n_layers=n_layers,
            hidden_dim=hidden_dim,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        if int(n_layers) < 1 or int(hidden_dim) < 1 or not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(
                f"SequentialMLP needs n_layers >= 1 (Linear layers, the output layer included), hidden_dim >= 1 and "
                f"0 <= dropout < 1; got n_layers={n_layers}, hidden_dim={hidden_dim}, dropout={dropout}."
            )
        make_activation(activation)  # fail early on an unknown name
        self.n_layers, self.hidden_dim = int(n_layers), int(hidden_dim)
        self.activation, self.dropout, self.batch_norm = activation, float(dropout), bool(batch_norm)
        self.layers: nn.Sequential | None = None

    def _build_layers(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> None:
        layers: list[nn.Module] = []
        width = math.prod(input_shape)
        for _ in range(self.n_layers - 1):
            layers.append(nn.Linear(width, self.hidden_dim))
            if self.batch_norm:
                layers.append(nn.BatchNorm1d(self.hidden_dim))
            layers.append(make_activation(self.activation))
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
            width = self.hidden_dim
        layers.append(nn.Linear(width, math.prod(output_shape)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Any, **kwargs: Any) -> torch.Tensor:
        """Map a batch ``(batch, *input_shape)`` to ``(batch, *output_shape)``; builds from ``x`` if needed."""
        if kwargs:
            raise InvalidArgumentError(f"SequentialMLP.forward takes no keyword arguments; got {sorted(kwargs)}.")
        x = self._prepare_input(x)
        self._check_input(x)
        out = self.layers(x if x.ndim == 2 else x.reshape(x.shape[0], -1))
        # The last Linear already gives (batch, k) for a 1-D output shape: no extra view in the autograd graph.
        return out if len(self._output_shape) == 1 else out.reshape(x.shape[0], *self._output_shape)
