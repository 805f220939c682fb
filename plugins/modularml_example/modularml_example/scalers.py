"""The example plugin's scaler."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Log1pScaler"]


class Log1pScaler:
    """Compresses heavy-tailed, non-negative data with ``log(1 + x)``, optionally shifted.

    Follows the scikit-learn transformer shape, so ModularML's ``Scaler`` can wrap it.

    Args:
        offset: Added to the data before the logarithm. ``None`` (default) learns it in
            :meth:`fit` as ``max(0, -min(X))`` per column, so negative data are allowed.
    """

    def __init__(self, offset: float | None = None) -> None:
        self.offset = offset

    def fit(self, X: ArrayLike, y: Any = None) -> Log1pScaler:
        """Learn the per-column shift (when ``offset`` is ``None``)."""
        data = self._check(X)
        if self.offset is None:
            self.offset_ = np.maximum(0.0, -data.min(axis=0))
        else:
            self.offset_ = np.full(data.shape[1], float(self.offset))
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return ``log1p(X + offset_)``.

        Raises:
            ValueError: If called before :meth:`fit`, or if a shifted value is below 0.
        """
        data = self._check(X, fitted=True)
        shifted = data + self.offset_
        if (shifted < 0).any():
            column = int(np.nonzero((shifted < 0).any(axis=0))[0][0])
            raise ValueError(
                f"Log1pScaler: column {column} holds values below -offset ({-self.offset_[column]}); "
                "refit on data that covers this range, or pass a larger offset."
            )
        return np.log1p(shifted)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform`."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Return ``expm1(X) - offset_``, undoing :meth:`transform`."""
        data = self._check(X, fitted=True)
        return np.expm1(data) - self.offset_

    def _check(self, X: ArrayLike, *, fitted: bool = False) -> np.ndarray:
        data = np.asarray(X, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"Log1pScaler expects 2-D data (samples, columns), got shape {data.shape}.")
        if fitted:
            if not hasattr(self, "offset_"):
                raise ValueError("Log1pScaler is not fitted yet; call fit(X) first.")
            if data.shape[1] != self.offset_.shape[0]:
                raise ValueError(f"Log1pScaler was fitted on {self.offset_.shape[0]} columns, got {data.shape[1]}.")
        return data
