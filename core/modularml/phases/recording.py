"""``ResultRecording``: which execution contexts a training phase keeps in its results."""

from __future__ import annotations

from enum import Enum

from modularml.errors import InvalidArgumentError

__all__ = ["ResultRecording"]


class ResultRecording(Enum):
    """Controls which execution contexts are retained in TrainResults.

    - ``ALL``: every batch of every epoch (default).
    - ``LAST``: only the final epoch's contexts. When an ``EarlyStopping`` callback with
      ``restore_best=True`` is active, "last" is the best epoch (the weights the phase ends with).
    - ``NONE``: no contexts; scalar metrics (``train_loss``, ``val_loss``) are still logged.

    Evaluation callbacks follow the same rule for the contexts of their evaluations.
    """

    ALL = "all"
    LAST = "last"
    NONE = "none"

    @classmethod
    def from_value(cls, value: str | ResultRecording) -> ResultRecording:
        """Normalize strings or enums to a ``ResultRecording``.

        Raises:
            ValueError: If ``value`` cannot be mapped to a valid member.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        raise InvalidArgumentError(f"Unknown result_recording {value!r}; use one of {[m.value for m in cls]}.")
