"""``SimilarityCondition``: a rule scoring how well two sample values match (used by samplers)."""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["SimilarityCondition"]

_MODES = ("similar", "dissimilar")
_WEIGHT_MODES = ("binary", "linear", "exp")
#: The weight of a non-match in ``"binary"`` mode with ``allow_fallback=True`` (raised to ``min_weight``).
BINARY_FALLBACK_WEIGHT = 0.1
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _metric_path(metric: Callable[..., Any]) -> str | None:
    """``"module:qualname"`` of a module-level Python function (the only metrics a file can name), else None."""
    if not isinstance(metric, types.FunctionType):
        return None
    module = getattr(metric, "__module__", None)
    qualname = getattr(metric, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname or "." in qualname:
        return None
    return f"{module}:{qualname}"


def _resolve_metric(path: str) -> Callable[..., Any]:
    """The metric function ``path`` names, through the plugin layer's resolver.

    A function named by a string runs only under ``allow_packaged_code=True`` (of the file or config
    being restored): there is no registry of metric functions.
    """
    from modularml.plugins.resolver import resolve

    module_name = path.partition(":")[0]
    if module_name == "__main__" or "<" in path:
        raise InvalidArgumentError(f"Cannot rebuild the metric {path!r}: it is not an importable function.")
    return resolve(path, what="similarity metric function", entry="metric", functions=True)


@dataclass
class SimilarityCondition:
    """A flexible rule for defining similarity or dissimilarity between two samples.

    Attributes:
        mode ({"similar", "dissimilar"}): Whether pairs within tolerance (``"similar"``) or
            explicitly outside tolerance (``"dissimilar"``, ``diff > tolerance``) match.
            Defaults to ``"similar"``.
        tolerance (float): Numeric threshold for values to be considered similar:
            ``tolerance=0.05`` means ``|a - b| <= 0.05`` is a match. Defaults to 0.0.
        metric (Callable[[float, float], float] | None): Optional custom distance function; its
            absolute value is used. If not provided, numeric values use the absolute difference
            and other values use equality (distance 0 if equal, else infinite). Defaults to None.
        weight_mode ({"binary", "linear", "exp"}): How matches and fallback pairs are weighted:
            ``"binary"``: all matches weigh 1.0, non-matches 0.1 (at least ``min_weight``) with
            ``allow_fallback=True``; ``"linear"``: weight = tolerance / diff (``diff / tolerance``
            when dissimilar); ``"exp"``: weight = exp(1 - diff / tolerance) (``exp(diff / tolerance
            - 1)`` when dissimilar). Defaults to ``"binary"``.
        max_weight (float): Upper clip of match weights (at least 1.0). With the default 1.0 every
            match weighs exactly 1.0; raise it (e.g. to 100) so that ``"linear"``/``"exp"`` rank
            better matches higher. Defaults to 1.0.
        min_weight (float): Lower clip of fallback weights (``0 <= min_weight < 1``). Defaults to 0.0.
        allow_fallback (bool): If True, pairs that fail the match condition are kept with a
            down-weighted score (< 1). If False, non-matches always score 0.0. Defaults to False.

    Weight semantics:
        - Matches always receive weight >= 1.0 (better matches -> larger weight).
        - Non-matches receive weight < 1.0 if ``allow_fallback=True``, else 0.0.
        - ``allow_fallback=False`` is equivalent to ``weight_mode='binary', min_weight=0.0,
          max_weight=1.0``: every score is exactly 1.0 (match) or 0.0.

    With ``tolerance=0`` a ratio ``diff / tolerance`` is taken as 0 for ``diff == 0`` and as
    infinite otherwise, so an exact match gets ``max_weight`` in ``"linear"`` mode.

    Raises:
        ValueError: If ``mode`` or ``weight_mode`` is unknown, ``tolerance`` is negative or not
            finite, or the weights are outside ``0 <= min_weight < 1 <= max_weight``.
        TypeError: If ``metric`` is neither None, a callable, nor an import path string.
    """

    mode: Literal["similar", "dissimilar"] = "similar"
    tolerance: float = 0.0
    metric: Callable[[float, float], float] | None = None
    weight_mode: Literal["binary", "linear", "exp"] = "binary"
    max_weight: float = 1.0
    min_weight: float = 0.0
    allow_fallback: bool = False

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise InvalidArgumentError(f"mode must be one of {list(_MODES)}; got {self.mode!r}.")
        if self.weight_mode not in _WEIGHT_MODES:
            raise InvalidArgumentError(f"weight_mode must be one of {list(_WEIGHT_MODES)}; got {self.weight_mode!r}.")
        for name in ("tolerance", "max_weight", "min_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidTypeError(f"{name} must be a number; got {value!r}.")
            setattr(self, name, float(value))
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise InvalidArgumentError(f"tolerance must be a finite number >= 0; got {self.tolerance!r}.")
        if not (0.0 <= self.min_weight < 1.0 <= self.max_weight) or not math.isfinite(self.max_weight):
            raise InvalidArgumentError(
                f"Weights must satisfy 0 <= min_weight < 1 <= max_weight (matches weigh >= 1, fallbacks < 1); got "
                f"min_weight={self.min_weight}, max_weight={self.max_weight}."
            )
        if isinstance(self.metric, str):
            self.metric = _resolve_metric(self.metric)
        if self.metric is not None and not callable(self.metric):
            raise InvalidTypeError(f"metric must be a callable (a, b) -> distance, or None; got {self.metric!r}.")
        self.allow_fallback = bool(self.allow_fallback)

    # -- scoring ----------------------------------------------------------------------------------
    def differences(self, a: Any, b: Any) -> np.ndarray:
        """Distances between ``a`` and ``b`` (broadcast element-wise), as non-negative floats.

        A custom metric is called once on the whole arrays when it supports that, else per pair.
        """
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
        if self.metric is not None:
            try:
                out = np.abs(np.asarray(self.metric(a_arr, b_arr), dtype=np.float64))
                if out.shape == shape:
                    return out
            except Exception:  # a scalar metric may not accept arrays
                pass
            pairwise = np.frompyfunc(lambda x, y: abs(float(self.metric(x, y))), 2, 1)  # type: ignore[misc]
            return np.asarray(pairwise(a_arr, b_arr), dtype=np.float64).reshape(shape)
        if a_arr.dtype.kind in "biuf" and b_arr.dtype.kind in "biuf":
            return np.abs(a_arr.astype(np.float64) - b_arr.astype(np.float64))
        return np.where(a_arr == b_arr, 0.0, np.inf).astype(np.float64).reshape(shape)

    def score_array(self, a: Any, b: Any) -> np.ndarray:
        """Vectorised :meth:`score`: weights for every pair of ``a`` and ``b`` (broadcast element-wise).

        Returns:
            np.ndarray: float64 weights, >= 1 for matches, < 1 (fallback) or 0 for non-matches.
        """
        return self.weights(self.differences(a, b))

    def weights(self, diff: np.ndarray) -> np.ndarray:
        """Weights for precomputed distances (see the class docstring for the rules).

        Returns:
            np.ndarray: float64 weights of the same shape as ``diff``.
        """
        diff = np.asarray(diff, dtype=np.float64)
        tol = self.tolerance
        match = diff <= tol if self.mode == "similar" else diff > tol
        if not self.allow_fallback:
            return np.where(match, 1.0, 0.0)
        if self.weight_mode == "binary":
            return np.where(match, 1.0, min(max(self.min_weight, BINARY_FALLBACK_WEIGHT), _BELOW_ONE))
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            rel = np.where(diff == 0, 0.0, diff / tol)  # diff / tolerance; inf where tolerance is 0
            if self.mode == "similar":
                raw = np.where(diff == 0, np.inf, tol / diff) if self.weight_mode == "linear" else np.exp(1.0 - rel)
            else:
                raw = rel if self.weight_mode == "linear" else np.exp(rel - 1.0)
        matched = np.clip(raw, 1.0, self.max_weight)
        fallback = np.clip(np.nan_to_num(raw, nan=0.0), self.min_weight, _BELOW_ONE)
        return np.where(match, matched, fallback)

    def score(self, a: Any, b: Any) -> float:
        """Compute the similarity/dissimilarity score between two values.

        Args:
            a: First value (anchor).
            b: Second value (candidate).

        Returns:
            float: A non-negative weight score.

        Notes:
            For matches (``diff <= tolerance`` if ``mode="similar"``, ``diff > tolerance`` if
            ``"dissimilar"``) the score is >= 1.0 (better matches = larger weight, up to
            ``max_weight``). For non-matches it is < 1.0 if ``allow_fallback=True`` and 0.0 if not.
            Without a metric, numbers compare by absolute difference (arrays of numbers by the
            largest absolute element-wise difference) and other values by equality.
        """
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if self.metric is not None:
            diff = abs(float(self.metric(a, b)))
        elif a_arr.dtype.kind in "biuf" and b_arr.dtype.kind in "biuf" and a_arr.shape == b_arr.shape:
            diff = float(np.max(np.abs(a_arr.astype(np.float64) - b_arr.astype(np.float64)), initial=0.0))
        else:
            diff = 0.0 if a_arr.shape == b_arr.shape and bool(np.all(a_arr == b_arr)) else math.inf
        return float(self.weights(np.asarray(diff)))

    # -- configuration ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return a JSON-serializable configuration for this condition.

        A metric that is a module-level function is stored as ``"module:qualname"``; any other
        callable (a lambda, a local function) is kept as the object itself, so such a config works
        in memory but cannot be saved to a file.

        Returns:
            dict[str, Any]: Configuration capturing all constructor arguments.
        """
        metric: Any = self.metric
        if metric is not None:
            metric = _metric_path(metric) or metric
        return {
            "mode": self.mode,
            "tolerance": self.tolerance,
            "metric": metric,
            "weight_mode": self.weight_mode,
            "max_weight": self.max_weight,
            "min_weight": self.min_weight,
            "allow_fallback": self.allow_fallback,
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, allow_packaged_code: bool = False) -> SimilarityCondition:
        """Reconstruct a condition from configuration.

        A metric recorded as ``"module:qualname"`` is imported only with ``allow_packaged_code=True``
        (here, or in the ``load`` of the file that holds the condition).

        Args:
            cfg (dict[str, Any]): Dictionary previously produced by :meth:`get_config`.
            allow_packaged_code (bool): Allow importing the metric function.

        Returns:
            SimilarityCondition: Rehydrated similarity condition.

        Raises:
            SerializationError: If the metric may not or cannot be imported.
        """
        from modularml.plugins.resolver import loading

        if not isinstance(cfg, dict):
            raise InvalidTypeError(f"A SimilarityCondition config is a dict; got {cfg!r:.200}.")
        with loading(allow_packaged_code=allow_packaged_code, what="similarity condition"):
            return cls(**cfg)
