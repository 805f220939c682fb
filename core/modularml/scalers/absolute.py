"""``Absolute``: absolute values, inverted by restoring each sample's recorded signs."""

from __future__ import annotations

import numpy as np

from modularml.scalers.base import PerSampleScaler

__all__ = ["Absolute"]


class Absolute(PerSampleScaler):
    """Replace every value by its absolute value.

    The signs of every transformed row are recorded under the row's sample id, so
    ``inverse_transform`` restores them (negative zeros included).

    Example:
        >>> Absolute().fit_transform(np.array([[-1.0, 2.0]]))
        array([[1., 2.]])
    """

    _stat_names = ("negative_",)

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return np.abs(X), {"negative_": np.signbit(X)}

    def _backward(self, X: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
        return np.where(stats["negative_"], -X, X)
