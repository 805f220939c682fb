"""``SequentialRNN``: a small LSTM or GRU over per-sample sequences (Keras)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from modularml.errors import InvalidArgumentError
from modularml_tf.models.base import TensorflowBaseModel

__all__ = ["SequentialRNN"]

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


class SequentialRNN(TensorflowBaseModel):
    """A recurrent encoder (LSTM or GRU) whose last time step is mapped by a Dense layer to ``output_shape``.

    The same arguments and defaults as the torch ``SequentialRNN``. Each sample is a sequence of
    shape ``(steps,)`` (one feature per step) or ``(steps, features)``; with ``bidirectional`` the
    head reads both directions' outputs at the last step, as torch's does.

    Args:
        input_shape: Per-sample ``(steps,)`` or ``(steps, features)``, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        cell: ``"lstm"`` or ``"gru"``.
        hidden_dim: Units of the recurrent layers.
        n_layers: Number of stacked recurrent layers.
        bidirectional: Whether to run the sequence both ways.
        dropout: Dropout between stacked recurrent layers (needs ``n_layers > 1``).
    """

    requires_output_shape = True

    def __init__(
        self,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
        cell: str = "lstm",
        hidden_dim: int = 32,
        n_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            input_shape=input_shape,
            output_shape=output_shape,
            cell=cell,
            hidden_dim=hidden_dim,
            n_layers=n_layers,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        if str(cell).lower() not in _CELLS:
            raise InvalidArgumentError(f"SequentialRNN cell is 'lstm' or 'gru'; got {cell!r}.")
        if int(hidden_dim) < 1 or int(n_layers) < 1 or not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(
                "SequentialRNN needs hidden_dim >= 1, n_layers >= 1 and 0 <= dropout < 1; got "
                f"hidden_dim={hidden_dim}, n_layers={n_layers}, dropout={dropout}."
            )
        self.cell = str(cell).lower()
        self.hidden_dim, self.n_layers = int(hidden_dim), int(n_layers)
        self.bidirectional, self.dropout = bool(bidirectional), float(dropout)

    def _build_keras_model(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> keras.Model:
        if len(input_shape) not in (1, 2):
            raise InvalidArgumentError(
                f"SequentialRNN takes per-sample sequences of shape (steps,) or (steps, features); got {input_shape}."
            )
        inputs = keras.Input(shape=input_shape, name="inputs")
        h = keras.layers.Reshape((input_shape[0], 1), name="features")(inputs) if len(input_shape) == 1 else inputs
        for i in range(self.n_layers):
            if i and self.dropout:
                h = keras.layers.Dropout(self.dropout, name=f"dropout_{i}")(h)
            layer = _CELLS[self.cell](self.hidden_dim, return_sequences=True, name=f"{self.cell}_{i}")
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{i}")
            h = layer(h)
        h = h[:, -1]
        h = keras.layers.Dense(math.prod(output_shape), name="head")(h)
        h = keras.layers.Reshape(output_shape, name="reshape")(h)
        return keras.Model(inputs, h, name="sequential_rnn")
