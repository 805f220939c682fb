"""``Negate``: multiply by -1 (its own inverse)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modularml.scalers.base import BaseScaler

__all__ = ["Negate"]


class Negate(BaseScaler):
    """Multiply every value by -1. Fitting learns only the number of features.

    Example:
        >>> Negate().fit_transform(np.array([[1.0, -2.0]]))
        array([[-1.,  2.]])
    """

    def transform(self, X: Any) -> np.ndarray:
        """Return ``-X``."""
        return np.negative(self._checked(X))

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Return ``-X`` (negation is its own inverse)."""
        return np.negative(self._checked(X))
