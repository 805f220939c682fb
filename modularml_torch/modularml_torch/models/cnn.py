"""``SequentialCNN``: a 1-D convolutional encoder for per-sample curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from modularml.errors import InvalidArgumentError
from modularml_torch.models.base import TorchBaseModel
from modularml_torch.models.layers import make_activation

__all__ = ["SequentialCNN"]

_POOLING = {"max": nn.MaxPool1d, "avg": nn.AvgPool1d, "none": None}


class SequentialCNN(TorchBaseModel):
    """A stack of 1-D convolutions over per-sample curves, with a linear head.

    Each sample is a curve of shape ``(length,)`` (one channel) or ``(channels, length)``. Each of
    the ``n_layers`` blocks is ``Conv1d`` (``"same"`` padding) → optional ``BatchNorm1d`` →
    activation → optional pooling → optional ``Dropout``; the result is flattened and mapped by a
    linear layer to ``output_shape``.

    Args:
        input_shape: Per-sample ``(length,)`` or ``(channels, length)``, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        n_layers: Number of convolution blocks.
        hidden_channels: Channels of every convolution.
        kernel_size: Odd kernel width.
        pooling: ``"max"``, ``"avg"`` or ``None``, applied after each block while the curve is long enough.
        pool_size: Pooling window and stride.
        activation: Activation by name.
        dropout: Dropout probability after each block.
        batch_norm: Whether to normalise each block with ``BatchNorm1d``.
    """

    requires_output_shape = True

    def __init__(
        self,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
        n_layers: int = 2,
        hidden_channels: int = 16,
        kernel_size: int = 3,
        pooling: str | None = "max",
        pool_size: int = 2,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(
            input_shape=input_shape,
            output_shape=output_shape,
            n_layers=n_layers,
            hidden_channels=hidden_channels,
            kernel_size=kernel_size,
            pooling=pooling,
            pool_size=pool_size,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        pooling_key = "none" if pooling is None else str(pooling).lower()
        if pooling_key not in _POOLING:
            raise InvalidArgumentError(f"SequentialCNN pooling is 'max', 'avg' or None; got {pooling!r}.")
        if int(n_layers) < 1 or int(hidden_channels) < 1 or int(kernel_size) % 2 == 0 or int(pool_size) < 1:
            raise InvalidArgumentError(
                f"SequentialCNN needs n_layers >= 1, hidden_channels >= 1, an odd kernel_size and pool_size >= 1; got "
                f"n_layers={n_layers}, hidden_channels={hidden_channels}, kernel_size={kernel_size}, "
                f"pool_size={pool_size}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(f"SequentialCNN needs 0 <= dropout < 1; got {dropout}.")
        make_activation(activation)
        self.n_layers, self.hidden_channels, self.kernel_size = int(n_layers), int(hidden_channels), int(kernel_size)
        self.pooling, self.pool_size = _POOLING[pooling_key], int(pool_size)
        self.activation, self.dropout, self.batch_norm = activation, float(dropout), bool(batch_norm)
        self.encoder: nn.Sequential | None = None
        self.head: nn.Linear | None = None

    def _build_layers(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> None:
        if len(input_shape) not in (1, 2):
            raise InvalidArgumentError(
                f"SequentialCNN takes per-sample curves of shape (length,) or (channels, length); got {input_shape}."
            )
        channels, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
        blocks: list[nn.Module] = []
        for _ in range(self.n_layers):
            blocks.append(nn.Conv1d(channels, self.hidden_channels, self.kernel_size, padding=self.kernel_size // 2))
            if self.batch_norm:
                blocks.append(nn.BatchNorm1d(self.hidden_channels))
            blocks.append(make_activation(self.activation))
            if self.pooling is not None and length >= self.pool_size > 1:
                blocks.append(self.pooling(self.pool_size))
                length //= self.pool_size
            if self.dropout:
                blocks.append(nn.Dropout(self.dropout))
            channels = self.hidden_channels
        self.encoder = nn.Sequential(*blocks)
        self.head = nn.Linear(channels * length, math.prod(output_shape))

    def forward(self, x: Any, **kwargs: Any) -> torch.Tensor:
        """Map a batch ``(batch, *input_shape)`` to ``(batch, *output_shape)``; builds from ``x`` if needed."""
        if kwargs:
            raise InvalidArgumentError(f"SequentialCNN.forward takes no keyword arguments; got {sorted(kwargs)}.")
        x = self._prepare_input(x)
        self._check_input(x)
        if x.ndim == 2:
            x = x.unsqueeze(1)
        features = self.encoder(x)
        return self.head(features.flatten(1)).reshape(x.shape[0], *self._output_shape)
