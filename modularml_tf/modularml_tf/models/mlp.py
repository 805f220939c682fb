"""``SequentialMLP``: a multilayer perceptron over flattened samples (Keras)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from modularml.errors import InvalidArgumentError
from modularml_tf.models.base import TensorflowBaseModel
from modularml_tf.models.layers import make_activation

__all__ = ["SequentialMLP"]


class SequentialMLP(TensorflowBaseModel):
    """A multilayer perceptron of ``n_layers`` Dense layers: each sample is flattened, passed through
    ``n_layers - 1`` hidden layers (``Dense`` → optional ``BatchNormalization`` → activation → optional
    ``Dropout``) and a Dense output layer, and reshaped to ``output_shape``.

    The same arguments and defaults as the torch ``SequentialMLP``: ``n_layers`` counts the Dense
    layers, so ``SequentialMLP(n_layers=3, hidden_dim=64)`` on 32 inputs and 1 output is
    32 → 64 → 64 → 1 (6,337 weights).

    Args:
        input_shape: Per-sample input shape, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        n_layers: Number of Dense layers, the output layer included (1 gives a linear model).
        hidden_dim: Width of every hidden layer.
        activation: Activation after each hidden layer, by name (``"relu"``, ``"gelu"``, ``"tanh"``, ...).
        dropout: Dropout probability after each hidden layer (0 disables it).
        batch_norm: Whether to normalise each hidden layer's outputs with ``BatchNormalization``.

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
                f"SequentialMLP needs n_layers >= 1 (Dense layers, the output layer included), hidden_dim >= 1 and "
                f"0 <= dropout < 1; got n_layers={n_layers}, hidden_dim={hidden_dim}, dropout={dropout}."
            )
        make_activation(activation)  # fail early on an unknown name
        self.n_layers, self.hidden_dim = int(n_layers), int(hidden_dim)
        self.activation, self.dropout, self.batch_norm = activation, float(dropout), bool(batch_norm)

    def _build_keras_model(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> keras.Model:
        inputs = keras.Input(shape=input_shape, name="inputs")
        h = inputs if len(input_shape) == 1 else keras.layers.Flatten(name="flatten")(inputs)
        for i in range(self.n_layers - 1):
            h = keras.layers.Dense(self.hidden_dim, name=f"dense_{i}")(h)
            if self.batch_norm:
                h = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"batch_norm_{i}")(h)
            h = keras.layers.Activation(make_activation(self.activation), name=f"activation_{i}")(h)
            if self.dropout:
                h = keras.layers.Dropout(self.dropout, name=f"dropout_{i}")(h)
        h = keras.layers.Dense(math.prod(output_shape), name="output")(h)
        if len(output_shape) != 1:
            h = keras.layers.Reshape(output_shape, name="reshape")(h)
        return keras.Model(inputs, h, name="sequential_mlp")
