"""``SequentialCNN``: a 1-D convolutional encoder for per-sample curves (Keras)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from modularml.errors import InvalidArgumentError
from modularml_tf.models.base import TensorflowBaseModel
from modularml_tf.models.layers import make_activation

__all__ = ["SequentialCNN"]

_POOLING = {"max": keras.layers.MaxPooling1D, "avg": keras.layers.AveragePooling1D, "none": None}


class SequentialCNN(TensorflowBaseModel):
    """A stack of 1-D convolutions over per-sample curves, with a Dense head.

    The same arguments, defaults and per-sample layout as the torch ``SequentialCNN``: each sample
    is a curve of shape ``(length,)`` (one channel) or ``(channels, length)`` (channels first; the
    model transposes it to Keras' channels-last layout itself). Each of the ``n_layers`` blocks is
    ``Conv1D`` (``"same"`` padding) → optional ``BatchNormalization`` → activation → optional pooling
    → optional ``Dropout``; the result is flattened and mapped by a Dense layer to ``output_shape``.

    Args:
        input_shape: Per-sample ``(length,)`` or ``(channels, length)``, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        n_layers: Number of convolution blocks.
        hidden_channels: Filters of every convolution.
        kernel_size: Odd kernel width.
        pooling: ``"max"``, ``"avg"`` or ``None``, applied after each block while the curve is long enough.
        pool_size: Pooling window and stride.
        activation: Activation by name.
        dropout: Dropout probability after each block.
        batch_norm: Whether to normalise each block with ``BatchNormalization``.
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

    def _build_keras_model(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> keras.Model:
        if len(input_shape) not in (1, 2):
            raise InvalidArgumentError(
                f"SequentialCNN takes per-sample curves of shape (length,) or (channels, length); got {input_shape}."
            )
        channels, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
        inputs = keras.Input(shape=input_shape, name="inputs")
        h = keras.layers.Reshape((channels, length), name="channels")(inputs) if len(input_shape) == 1 else inputs
        h = keras.layers.Permute((2, 1), name="channels_last")(h)
        for i in range(self.n_layers):
            h = keras.layers.Conv1D(self.hidden_channels, self.kernel_size, padding="same", name=f"conv_{i}")(h)
            if self.batch_norm:
                h = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"batch_norm_{i}")(h)
            h = keras.layers.Activation(make_activation(self.activation), name=f"activation_{i}")(h)
            if self.pooling is not None and length >= self.pool_size > 1:
                h = self.pooling(self.pool_size, name=f"pool_{i}")(h)
                length //= self.pool_size
            if self.dropout:
                h = keras.layers.Dropout(self.dropout, name=f"dropout_{i}")(h)
        h = keras.layers.Flatten(name="flatten")(h)
        h = keras.layers.Dense(math.prod(output_shape), name="head")(h)
        h = keras.layers.Reshape(output_shape, name="reshape")(h)
        return keras.Model(inputs, h, name="sequential_cnn")
