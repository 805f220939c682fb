"""Bases of the core's scalers: the scikit-learn transformer shape on 2-D numpy arrays.

:class:`BaseScaler` gives ``get_params``/``set_params``, input checks and ``fit_transform``.
:class:`PerSampleScaler` is the base of scalers whose statistics belong to one sample (a row):
``transform`` records each row's statistics keyed by the row's sample id, and
``inverse_transform`` looks them up by id, so rows are inverted with their own statistics
whichever call transformed them and in whatever order they come back.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np

from modularml.errors import InvalidArgumentError, NotFittedError

__all__ = ["BaseScaler", "PerSampleScaler"]


def as_2d(data: Any, who: str) -> np.ndarray:
    """``data`` as a 2-D numeric numpy array.

    Raises:
        InvalidArgumentError: If it is not 2-D or not numeric.
    """
    array = np.asarray(data)
    if array.ndim != 2:
        raise InvalidArgumentError(f"{who} works on 2-D data (n_samples, n_features); got shape {array.shape}.")
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{who} works on numbers; got data of dtype {array.dtype}.")
    return array


def as_float(array: np.ndarray) -> np.ndarray:
    """Floating-point data keep their dtype; integers and booleans become float64."""
    return array if array.dtype.kind == "f" else array.astype(np.float64)


class BaseScaler:
    """Base of the core's scalers: ``fit``, ``transform``, ``inverse_transform`` on 2-D arrays.

    A subclass sets learned attributes in :meth:`_fit` (names ending in ``_``) and implements
    :meth:`transform` and :meth:`inverse_transform`. Constructor arguments must be stored as
    attributes of the same name, so :meth:`get_params` can rebuild the scaler.
    """

    #: Whether the scaler keeps statistics per sample (see :class:`PerSampleScaler`).
    per_sample: ClassVar[bool] = False

    # -- parameters -------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        if cls.__init__ is object.__init__:
            return []
        signature = inspect.signature(cls.__init__)
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [n for n, p in list(signature.parameters.items())[1:] if p.kind not in variadic]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention).

        Args:
            deep (bool): Accepted for scikit-learn compatibility; ignored.

        Returns:
            dict[str, Any]: Parameter name -> value.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseScaler:
        """Set constructor arguments (scikit-learn convention); returns ``self``.

        Raises:
            InvalidArgumentError: For a name that is not a parameter.
        """
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise InvalidArgumentError(f"{type(self).__name__} has no parameter {name!r}; parameters: {names}.")
            setattr(self, name, value)
        return self

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BaseScaler:
        """Learn what the transform needs from ``X`` (n_samples, n_features); returns ``self``."""
        array = as_2d(X, type(self).__name__)
        self.n_features_in_ = int(array.shape[1])
        self._fit(array)
        return self

    def _fit(self, X: np.ndarray) -> None:
        """Learn from checked 2-D data (nothing by default)."""

    def fit_transform(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit to ``X``, then transform it."""
        return self.fit(X).transform(X, **kwargs)

    def transform(self, X: Any) -> np.ndarray:
        """Apply the transform to 2-D data."""
        raise NotImplementedError

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo the transform on 2-D data."""
        raise NotImplementedError

    def _checked(self, X: Any) -> np.ndarray:
        """``X`` as 2-D data with as many features as seen in ``fit``.

        Raises:
            NotFittedError: If :meth:`fit` was not called.
            InvalidArgumentError: If the data are not 2-D numbers with that many features.
        """
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"This {type(self).__name__} has not been fit; call fit() first.")
        array = as_2d(X, type(self).__name__)
        if array.shape[1] != self.n_features_in_:
            raise InvalidArgumentError(
                f"{type(self).__name__} was fit on {self.n_features_in_} features; got data with {array.shape[1]}."
            )
        return array

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class PerSampleScaler(BaseScaler):
    """A scaler whose statistics belong to each sample (row), recorded by sample id.

    ``transform(X, sample_ids=...)`` records the statistics of every row under its id (a newer
    call overwrites an id's statistics); ``inverse_transform(X, sample_ids=...)`` inverts every
    row with the statistics recorded for its id. Without ``sample_ids`` rows are keyed by their
    position in the call (``"0"``, ``"1"``, ...), which inverts the rows of the latest call given
    in the same order. A FeatureSet always passes its sample UUIDs.

    A subclass lists its per-row statistics in :attr:`_stat_names` and implements
    :meth:`_forward` and :meth:`_backward`.
    """

    per_sample: ClassVar[bool] = True
    #: Names of the per-row statistics (learned attributes, one row per recorded sample id).
    _stat_names: ClassVar[tuple[str, ...]] = ()

    def _fit(self, X: np.ndarray) -> None:
        if X.shape[1] == 0:
            raise InvalidArgumentError(
                f"{type(self).__name__} needs at least one feature per row; got shape {X.shape}."
            )

    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Transform checked data; return the result and each row's statistics."""
        raise NotImplementedError

    def _backward(self, X: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
        """Invert checked data with the given per-row statistics."""
        raise NotImplementedError

    def transform(self, X: Any, *, sample_ids: Any = None) -> np.ndarray:
        """Transform 2-D data, recording each row's statistics under its sample id.

        Args:
            X: Data of shape (n_samples, n_features).
            sample_ids: One id per row (e.g. sample UUIDs); defaults to row positions.

        Returns:
            np.ndarray: The transformed data.

        Raises:
            NotFittedError: If the scaler has not been fit.
            InvalidArgumentError: If the data or the ids do not fit.
        """
        array = self._checked(X)
        ids = self._ids(sample_ids, len(array))
        out, stats = self._forward(array)
        self._remember(ids, stats)
        return out

    def fit_transform(self, X: Any, y: Any = None, *, sample_ids: Any = None) -> np.ndarray:
        """Fit to ``X``, then transform it (recording statistics under ``sample_ids``)."""
        return self.fit(X).transform(X, sample_ids=sample_ids)

    def inverse_transform(self, X: Any, *, sample_ids: Any = None) -> np.ndarray:
        """Invert 2-D data row by row with the statistics recorded for each row's sample id.

        Args:
            X: Transformed data of shape (n_samples, n_features).
            sample_ids: The id of every row, as given to :meth:`transform`; defaults to row positions.

        Returns:
            np.ndarray: The data in original units.

        Raises:
            NotFittedError: If the scaler has not been fit.
            InvalidArgumentError: If a row's id has no recorded statistics.
        """
        array = self._checked(X)
        ids = self._ids(sample_ids, len(array))
        return self._backward(array, self._recall(ids))

    # -- keyed statistics ------------------------------------------------------------------------
    def _ids(self, sample_ids: Any, n: int) -> np.ndarray:
        if sample_ids is None:
            return np.arange(n).astype(str)
        ids = np.asarray(sample_ids)
        if ids.shape != (n,):
            raise InvalidArgumentError(
                f"{type(self).__name__} needs one sample id per row: got ids of shape {ids.shape} for {n} rows."
            )
        return ids.astype(str)

    def _remember(self, ids: np.ndarray, stats: dict[str, np.ndarray]) -> None:
        if len(np.unique(ids)) != len(ids):
            raise InvalidArgumentError(
                f"{type(self).__name__} got repeated sample ids in one call; every row needs its own id."
            )
        old_ids = getattr(self, "sample_ids_", None)
        if old_ids is not None and len(old_ids):
            ids = np.concatenate([old_ids, ids])
            stats = {name: np.concatenate([getattr(self, name), stats[name]]) for name in self._stat_names}
        # keep the newest statistics of every id: the first occurrence in reversed order
        reversed_ids = ids[::-1]
        unique, first = np.unique(reversed_ids, return_index=True)
        keep = len(ids) - 1 - first
        self.sample_ids_ = unique
        for name in self._stat_names:
            setattr(self, name, stats[name][keep])

    def _recall(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        known = getattr(self, "sample_ids_", None)
        if known is None:
            known = np.array([], dtype=str)
        position = np.searchsorted(known, ids)
        clipped = np.minimum(position, max(len(known) - 1, 0))
        found = (position < len(known)) & (known[clipped] == ids) if len(known) else np.zeros(len(ids), dtype=bool)
        if not found.all():
            missing = ids[~found]
            raise InvalidArgumentError(
                f"{type(self).__name__} has no statistics for {len(missing)} of the {len(ids)} rows (e.g. sample id "
                f"{str(missing[0])!r}): a per-sample scaler can only invert rows it transformed. Pass the sample ids "
                "the rows were transformed with (sample_ids=...)."
            )
        return {name: getattr(self, name)[clipped] for name in self._stat_names}
