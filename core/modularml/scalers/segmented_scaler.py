"""``SegmentedScaler``: one clone of a scaler per segment of columns."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modularml.errors import InvalidArgumentError, NotFittedError
from modularml.scalers.base import BaseScaler, as_2d
from modularml.scalers.scaler import Scaler

__all__ = ["SegmentedScaler"]


class SegmentedScaler(BaseScaler):
    """Scale segments of columns independently, with one clone of ``scaler`` per segment.

    ``boundaries`` start at 0 and increase strictly; segment ``i`` holds columns
    ``boundaries[i]`` to ``boundaries[i + 1] - 1``, and the last segment runs from the last
    boundary to the last column. With ``boundaries=(0, 50)`` on 100 columns, columns 0-49 and
    50-99 are scaled separately (``(0, 50, 100)`` means the same).

    Args:
        boundaries (Sequence[int]): Column indices where segments start; the first is 0.
        scaler (str | Any): The scaler to clone per segment: a registered name, a class, an
            instance, a :class:`~modularml.scalers.Scaler`, or a Scaler config dict.

    Raises:
        ValueError: If the boundaries do not start at 0 or do not increase strictly.
        TypeError: If ``scaler`` is not a scaler.

    Example:
        >>> scaler = SegmentedScaler(boundaries=(0, 2), scaler="PerSampleMinMaxScaler")
        >>> scaler.fit_transform(np.array([[0.0, 2.0, 10.0, 30.0]]))
        array([[0., 1., 0., 1.]])
    """

    def __init__(self, boundaries: Sequence[int], scaler: str | Any) -> None:
        try:
            bounds = [int(b) for b in boundaries]
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"boundaries are column indices; got {boundaries!r}.") from None
        if not bounds or bounds[0] != 0 or any(b >= c for b, c in itertools.pairwise(bounds)):
            raise InvalidArgumentError(
                f"boundaries must start at 0 and increase strictly, e.g. (0, 50, 100); got {list(boundaries)!r}."
            )
        self.boundaries = tuple(bounds)
        if isinstance(scaler, Mapping):
            self._template = Scaler.from_config(dict(scaler))
        else:
            self._template = Scaler(scaler)
        self._template = self._template.clone_unfitted()

    @property
    def scaler(self) -> dict[str, Any]:
        """The Scaler config of the per-segment scaler (what :meth:`get_params` reports)."""
        return self._template.get_config()

    @property
    def per_sample(self) -> bool:  # type: ignore[override]
        """Whether the per-segment scaler keeps statistics per sample."""
        return self._template.per_sample

    def _segments(self, n_features: int) -> np.ndarray:
        if self.boundaries[-1] > n_features:
            raise InvalidArgumentError(
                f"SegmentedScaler boundaries {list(self.boundaries)} reach beyond the {n_features} columns of the data."
            )
        ends = [*self.boundaries[1:], n_features] if self.boundaries[-1] < n_features else list(self.boundaries[1:])
        return np.array([self.boundaries[: len(ends)], ends], dtype=np.int64).T

    def fit(self, X: Any, y: Any = None) -> SegmentedScaler:
        """Fit one clone of the scaler to every segment of columns; returns ``self``."""
        array = as_2d(X, "SegmentedScaler")
        segments = self._segments(array.shape[1])
        scalers = [self._template.clone_unfitted().fit(array[:, start:end]) for start, end in segments]
        self.n_features_in_ = int(array.shape[1])
        self.segments_ = segments
        self.scalers_ = scalers
        return self

    def _apply(self, X: Any, method: str, sample_ids: Any) -> np.ndarray:
        array = self._checked(X)
        parts = [
            getattr(scaler, method)(array[:, start:end], sample_ids=sample_ids)
            for scaler, (start, end) in zip(self.scalers_, self.segments_, strict=True)
        ]
        return np.concatenate(parts, axis=1)

    def transform(self, X: Any, *, sample_ids: Any = None) -> np.ndarray:
        """Transform every segment with its own scaler."""
        return self._apply(X, "transform", sample_ids)

    def fit_transform(self, X: Any, y: Any = None, *, sample_ids: Any = None) -> np.ndarray:
        """Fit to ``X``, then transform it."""
        return self.fit(X).transform(X, sample_ids=sample_ids)

    def inverse_transform(self, X: Any, *, sample_ids: Any = None) -> np.ndarray:
        """Invert every segment with its own scaler.

        Raises:
            NotImplementedError: If the per-segment scaler has no inverse.
        """
        return self._apply(X, "inverse_transform", sample_ids)

    # -- learned state (nested scalers are stored by their own state) ----------------------------
    def get_state(self) -> dict[str, Any]:
        """The learned state: segments and every segment scaler's state (arrays and JSON values).

        Raises:
            NotFittedError: If the scaler has not been fit.
        """
        if not hasattr(self, "scalers_"):
            raise NotFittedError("This SegmentedScaler has not been fit; call fit() first.")
        return {
            "n_features_in_": self.n_features_in_,
            "segments_": np.array(self.segments_),
            "scalers_": [scaler.get_state() for scaler in self.scalers_],
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore the state returned by :meth:`get_state`.

        Raises:
            ValueError: If the state is malformed.
        """
        try:
            segments = np.asarray(state["segments_"], dtype=np.int64).reshape(-1, 2)
            scalers = []
            for scaler_state in state["scalers_"]:
                scaler = self._template.clone_unfitted()
                scaler.set_state(scaler_state)
                scalers.append(scaler)
            n_features = int(state["n_features_in_"])
        except (KeyError, TypeError) as exc:
            raise InvalidArgumentError(f"Invalid SegmentedScaler state: {exc}") from None
        if len(scalers) != len(segments):
            raise InvalidArgumentError(
                f"SegmentedScaler state has {len(segments)} segments but {len(scalers)} scalers."
            )
        self.n_features_in_, self.segments_, self.scalers_ = n_features, segments, scalers
