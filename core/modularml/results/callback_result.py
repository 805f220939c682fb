"""``CallbackResult``: what a callback hook returned, as the phase results store it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CallbackResult"]


@dataclass(frozen=True)
class CallbackResult:
    """What a callback hook returned, stored in the phase results.

    Attributes:
        kind (str): The callback's kind (e.g. ``"evaluation"``).
        label (str): The callback's label.
        epoch_idx (int | None): Epoch of the hook (None at phase level).
        batch_idx (int | None): Batch of the hook (None at epoch or phase level).
        value (Any): The payload.
    """

    kind: str
    label: str
    epoch_idx: int | None = None
    batch_idx: int | None = None
    value: Any = None
