"""``SequentialRNN``: a small LSTM or GRU over per-sample sequences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from modularml.errors import InvalidArgumentError
from modularml_torch.models.base import TorchBaseModel

__all__ = ["SequentialRNN"]

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class SequentialRNN(TorchBaseModel):
    """A recurrent encoder (LSTM or GRU) whose last time step is mapped by a linear layer to ``output_shape``.

    Each sample is a sequence of shape ``(steps,)`` (one feature per step) or ``(steps, features)``.

    Args:
        input_shape: Per-sample ``(steps,)`` or ``(steps, features)``, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        cell: ``"lstm"`` or ``"gru"``.
        hidden_dim: Hidden size of the recurrent layers.
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
        self.recurrent: nn.Module | None = None
        self.head: nn.Linear | None = None

    def _build_layers(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> None:
        if len(input_shape) not in (1, 2):
            raise InvalidArgumentError(
                f"SequentialRNN takes per-sample sequences of shape (steps,) or (steps, features); got {input_shape}."
            )
        features = 1 if len(input_shape) == 1 else input_shape[1]
        self.recurrent = _CELLS[self.cell](
            features,
            self.hidden_dim,
            num_layers=self.n_layers,
            batch_first=True,
            bidirectional=self.bidirectional,
            dropout=self.dropout if self.n_layers > 1 else 0.0,
        )
        directions = 2 if self.bidirectional else 1
        self.head = nn.Linear(self.hidden_dim * directions, math.prod(output_shape))

    def forward(self, x: Any, **kwargs: Any) -> torch.Tensor:
        """Map a batch ``(batch, *input_shape)`` to ``(batch, *output_shape)``; builds from ``x`` if needed."""
        if kwargs:
            raise InvalidArgumentError(f"SequentialRNN.forward takes no keyword arguments; got {sorted(kwargs)}.")
        x = self._prepare_input(x)
        self._check_input(x)
        if x.ndim == 2:
            x = x.unsqueeze(-1)
        sequence, _ = self.recurrent(x)
        return self.head(sequence[:, -1]).reshape(x.shape[0], *self._output_shape)
