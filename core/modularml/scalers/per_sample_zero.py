"""``PerSampleZeroStart``: shift every sample (row) so that it starts at zero."""

from __future__ import annotations

import numpy as np

from modularml.scalers.base import PerSampleScaler

__all__ = ["PerSampleZeroStart"]


class PerSampleZeroStart(PerSampleScaler):
    """Subtract each row's first value from the row, so every row starts at 0.

    Each row's first value is recorded under its sample id, so ``inverse_transform`` adds it back.

    Example:
        >>> PerSampleZeroStart().fit_transform(np.array([[3.0, 3.5, 4.0]]))
        array([[0. , 0.5, 1. ]])
    """

    _stat_names = ("offset_",)

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        offset = X[:, 0].copy()
        return X - offset[:, None], {"offset_": offset}

    def _backward(self, X: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
        return X + stats["offset_"][:, None]
