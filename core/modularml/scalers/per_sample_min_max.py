"""``PerSampleMinMaxScaler``: scale every sample (row) to a range using its own minimum and maximum."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modularml.errors import InvalidArgumentError
from modularml.scalers.base import PerSampleScaler, as_float

__all__ = ["PerSampleMinMaxScaler"]


class PerSampleMinMaxScaler(PerSampleScaler):
    """Scale each row to ``feature_range`` with the row's own minimum and maximum.

    A row whose values are all equal is shifted to ``feature_range[0]``. Each row's minimum and
    range are recorded under its sample id, so ``inverse_transform`` restores the row's units.

    Args:
        feature_range (tuple[float, float]): ``(low, high)`` with ``low < high``. Defaults to ``(0, 1)``.

    Raises:
        ValueError: If ``feature_range`` is not two increasing numbers.

    Example:
        >>> PerSampleMinMaxScaler().fit_transform(np.array([[2.0, 4.0, 3.0]]))
        array([[0. , 1. , 0.5]])
    """

    _stat_names = ("data_min_", "data_range_")

    def __init__(self, feature_range: Sequence[float] = (0, 1)) -> None:
        try:
            low, high = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"feature_range is (low, high); got {feature_range!r}.") from None
        if not low < high:
            raise InvalidArgumentError(f"feature_range needs low < high; got {feature_range!r}.")
        self.feature_range = tuple(feature_range)

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        X = as_float(X)
        low, high = self.feature_range
        data_min = X.min(axis=1)
        data_range = X.max(axis=1) - data_min
        data_range = np.where(data_range == 0, np.ones_like(data_range), data_range)
        scaled = (X - data_min[:, None]) / data_range[:, None] * (high - low) + low
        return scaled.astype(X.dtype, copy=False), {"data_min_": data_min, "data_range_": data_range}

    def _backward(self, X: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
        X = as_float(X)
        low, high = self.feature_range
        out = (X - low) / (high - low) * stats["data_range_"][:, None] + stats["data_min_"][:, None]
        return out.astype(X.dtype, copy=False)
