"""``ScikitModelWrapper``: any scikit-learn estimator as a ModularML model."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from modularml.backends.components import import_path
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotFittedError, SerializationError
from modularml.models import BaseModel, ShapedModel, normalize_shape
from modularml.plugins.resolver import resolve
from modularml.scalers.estimator_state import (
    constructor_params,
    decode_value,
    encode_value,
    get_learned_state,
    set_learned_state,
)

__all__ = ["METHODS", "ScikitModelWrapper"]

#: The estimator methods a wrapper can forward with.
METHODS: tuple[str, ...] = ("predict", "transform", "predict_proba", "decision_function")

_FITTED = "fitted"
_ESTIMATOR_STATE = "estimator_state"
_ESTIMATOR_PARAMS = "estimator_params"


def _feature_count(shape: Sequence[int]) -> int:
    return math.prod(int(d) for d in shape)


def _transformed_feature_count(estimator: Any, n_in: int | None) -> int | None:
    """How many features ``estimator.transform`` gives for ``n_in``, when its parameters fix it (else ``None``).

    An integer ``n_components`` fixes it (``PCA``, ``TruncatedSVD``...); a transformer that maps
    features one to one (``StandardScaler``) keeps ``n_in``; a ``Pipeline`` chains its steps.
    """
    if estimator is None or estimator == "passthrough":
        return n_in
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and all(isinstance(step, (tuple, list)) and len(step) == 2 for step in steps):
        for _, step in steps:
            n_in = _transformed_feature_count(step, n_in)
            if n_in is None:
                return None
        return n_in
    n_components = getattr(estimator, "n_components", None)
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        return int(n_components)
    if isinstance(estimator, OneToOneFeatureMixin):
        return n_in
    return None


class ScikitModelWrapper(ShapedModel):
    """Wraps a scikit-learn estimator so that it can sit in a ModularML model graph.

    The estimator learns with ``fit(X, y)`` on all the data at once (a
    :class:`~modularml.phases.FitPhase` calls :meth:`fit`), or incrementally with
    :meth:`partial_fit`; it is never trained by gradient steps, so the scikit backend is not
    ``trainable`` and a graph's train steps only forward it.

    Per-sample inputs of any shape are flattened: a batch ``(B, 2, 100)`` reaches the estimator
    as ``(B, 200)``. Targets with a single column are given as ``(B,)``, as single-output
    estimators expect; several columns stay ``(B, n)``. :meth:`forward` calls ``predict`` for
    regressors and classifiers and ``transform`` for transformers (``PCA``, ``StandardScaler``),
    unless ``method`` names another, and returns float32 arrays ``(B, k)``.

    Give an estimator instance (used as it is, so fitting it fits your object), or an estimator
    class (or its ``"module:QualName"`` import path) with ``estimator_kwargs``. Fitted state is
    saved as numpy arrays and JSON values, never pickled; estimator classes of scikit-learn are
    restored from files and configs, those of other packages only with ``allow_packaged_code``.

    Args:
        estimator: A scikit-learn estimator instance, an estimator class, or its import path.
        estimator_kwargs: Constructor arguments when ``estimator`` is a class or a path.
        method: Estimator method that :meth:`forward` calls: ``"predict"``, ``"transform"``,
            ``"predict_proba"``, ``"decision_function"``, or ``None`` to choose by estimator type.
        input_shape: Per-sample input shape, or ``None`` to take it from the data.
        output_shape: Per-sample output shape, or ``None`` to learn it when fitting.

    Raises:
        InvalidTypeError: If ``estimator`` is not a scikit-learn estimator (or class of one).
        InvalidArgumentError: If ``estimator_kwargs`` come with an instance, do not fit the
            class, or ``method`` is unknown or missing on the estimator.

    Example:
        >>> from sklearn.decomposition import PCA
        >>> node = mml.ModelNode("pca", PCA(n_components=4), fs)  # wrapped in a ScikitModelWrapper
        >>> FitPhase.from_split("fit_pca", split="train").execute()
    """

    def __init__(
        self,
        estimator: BaseEstimator | type | str,
        *,
        estimator_kwargs: Mapping[str, Any] | None = None,
        method: Literal["predict", "transform", "predict_proba", "decision_function"] | None = None,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
    ) -> None:
        if estimator_kwargs is not None and not isinstance(estimator_kwargs, Mapping):
            raise InvalidArgumentError(f"estimator_kwargs is a dict of keyword arguments; got {estimator_kwargs!r}.")
        if isinstance(estimator, str):  # from a file or config: a scikit-learn estimator class
            estimator = resolve(estimator, what="estimator class", entry="estimator", base=BaseEstimator)
        if isinstance(estimator, type):
            if not issubclass(estimator, BaseEstimator):
                raise InvalidTypeError(
                    f"ScikitModelWrapper wraps scikit-learn estimators (sklearn.base.BaseEstimator); got the class "
                    f"{estimator.__qualname__}."
                )
            kwargs = decode_value(dict(estimator_kwargs or {}), base=BaseEstimator, where="estimator_kwargs")
            try:
                estimator = estimator(**kwargs)
            except TypeError as exc:
                raise InvalidArgumentError(
                    f"Cannot build {estimator.__qualname__} with estimator_kwargs {kwargs!r}: {exc}"
                ) from None
        elif estimator_kwargs:
            raise InvalidArgumentError(
                f"estimator_kwargs are for an estimator class; {type(estimator).__name__} is already an instance. "
                "Set its parameters on the instance (estimator.set_params(...)) instead."
            )
        if isinstance(estimator, BaseModel) or not isinstance(estimator, BaseEstimator):
            raise InvalidTypeError(
                f"ScikitModelWrapper wraps a scikit-learn estimator (sklearn.base.BaseEstimator); got "
                f"{type(estimator).__name__}."
                + (" A ModularML model needs no wrapper." if isinstance(estimator, BaseModel) else "")
            )
        if method is not None and method not in METHODS:
            raise InvalidArgumentError(f"method is one of {list(METHODS)} or None; got {method!r}.")
        resolved = method if method is not None else self._default_method(estimator)
        if not hasattr(estimator, resolved):
            raise InvalidArgumentError(
                f"{type(estimator).__name__} has no {resolved}() to forward with; pass method= one of "
                f"{[m for m in METHODS if hasattr(estimator, m)]}."
            )
        super().__init__("scikit")
        self._estimator: BaseEstimator = estimator
        self._method_arg = method
        self._method = resolved
        self._declare_shapes(input_shape, output_shape)
        self._fitted = self._estimator_is_fitted(estimator)
        if self._fitted:
            n_features = getattr(estimator, "n_features_in_", None)
            if self._input_shape is None and isinstance(n_features, (int, np.integer)):
                self._input_shape = (int(n_features),)
            self._built = self._input_shape is not None

    @staticmethod
    def _default_method(estimator: BaseEstimator) -> str:
        """``predict`` for regressors and classifiers, else ``transform`` where there is one, else ``predict``."""
        if is_regressor(estimator) or is_classifier(estimator):
            return "predict"
        if hasattr(estimator, "transform"):
            return "transform"
        return "predict"

    @staticmethod
    def _estimator_is_fitted(estimator: BaseEstimator) -> bool:
        try:
            check_is_fitted(estimator)
        except (SklearnNotFittedError, TypeError):
            return False
        return True

    # ------------------------------------------------------------------ description
    @property
    def estimator(self) -> BaseEstimator:
        """The wrapped scikit-learn estimator."""
        return self._estimator

    @property
    def method(self) -> str:
        """The estimator method :meth:`forward` calls (``"predict"``, ``"transform"``, ...)."""
        return self._method

    @property
    def is_fitted(self) -> bool:
        """Whether the estimator has been fitted (by :meth:`fit`, :meth:`partial_fit`, or before wrapping)."""
        return self._fitted

    def _name(self) -> str:
        return f"ScikitModelWrapper({type(self._estimator).__name__})"

    def get_init_args(self) -> dict[str, Any]:
        """The constructor's arguments: the estimator's class as an import path and its parameters.

        Raises:
            SerializationError: If the estimator's class has no import path, or a parameter
                cannot be stored without pickling.
        """
        cls = type(self._estimator)
        path = import_path(cls)
        if path is None:
            raise SerializationError(
                f"{self._name()}: the estimator class {cls.__qualname__} has no import path (a local class), so "
                "the model cannot be described as a config. Define the class at module level."
            )
        params = constructor_params(clone(self._estimator)) or {}  # unfitted: a config holds no learned state
        return {
            "estimator": path,
            "estimator_kwargs": encode_value(params, f"{cls.__name__}.params"),
            "method": self._method_arg,
            "input_shape": self._declared_input,
            "output_shape": self._declared_output,
        }

    # ------------------------------------------------------------------ building
    def build(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Record the per-sample shapes; the estimator itself learns only when fitted.

        The output shape is known before fitting when it is declared, when the estimator has an
        integer ``n_components`` (``PCA(n_components=4)`` gives ``(4,)``), or when it is a
        transformer that keeps the number of features (``StandardScaler``). ``force`` replaces
        the estimator by an unfitted clone of it.

        Raises:
            InvalidArgumentError: If a shape disagrees with the declared one, or (without
                ``force``) with the number of features the estimator was fitted on.
        """
        new_in = normalize_shape(input_shape, what="input_shape")
        new_out = normalize_shape(output_shape, what="output_shape")
        if force:
            self._estimator = clone(self._estimator)
            self._fitted = False
            self._input_shape, self._output_shape = self._declared_input, self._declared_output
        for what, new, declared in (
            ("input", new_in, self._declared_input),
            ("output", new_out, self._declared_output),
        ):
            if new is not None and declared is not None and _feature_count(new) != _feature_count(declared):
                raise InvalidArgumentError(f"{self._name()} was declared with {what}_shape={declared}, not {new}.")
        if self._fitted and new_in is not None and _feature_count(new_in) != _feature_count(self._input_shape or ()):
            raise InvalidArgumentError(
                f"{self._name()} was fitted on {_feature_count(self._input_shape or ())} features per sample; input "
                f"shape {new_in} has {_feature_count(new_in)}. Pass force=True to start over unfitted."
            )
        if new_in is not None:
            self._input_shape = new_in
        if new_out is not None:
            self._output_shape = new_out
        if self._output_shape is None:
            self._output_shape = self._known_output_shape()
        self._built = True

    def _known_output_shape(self) -> tuple[int, ...] | None:
        """The output shape the estimator's parameters fix before fitting, if any."""
        if self._method != "transform":
            return None
        n_in = None if self._input_shape is None else _feature_count(self._input_shape)
        n_out = _transformed_feature_count(self._estimator, n_in)
        return None if n_out is None else (n_out,)

    # ------------------------------------------------------------------ data
    def _as_features(self, x: Any, expected: tuple[int, ...] | None) -> np.ndarray:
        """``x`` as a 2-D numpy array ``(B, F)``, checked against the ``expected`` per-sample shape."""
        array = np.asarray(x)
        if array.ndim < 1 or array.shape[0] == 0:
            raise InvalidArgumentError(
                f"{self._name()} needs a batch with at least one sample; got shape {array.shape}."
            )
        per_sample = tuple(int(d) for d in array.shape[1:])
        if expected is not None and _feature_count(per_sample) != _feature_count(expected):
            state = "fitted on" if self._fitted else "declared with"
            raise InvalidArgumentError(
                f"{self._name()} was {state} per-sample input shape {expected} ({_feature_count(expected)} "
                f"features); got {per_sample} ({_feature_count(per_sample)} features)."
            )
        return array.reshape(array.shape[0], -1)

    def _as_targets(self, y: Any, n_samples: int) -> np.ndarray | None:
        if y is None:
            return None
        array = np.asarray(y)
        if array.ndim == 0 or array.shape[0] != n_samples:
            raise InvalidArgumentError(
                f"{self._name()}: fit got {n_samples} samples of features but targets of shape {array.shape}."
            )
        array = array.reshape(n_samples, -1)
        return array[:, 0] if array.shape[1] == 1 else array

    def _outputs(self, x2d: np.ndarray) -> np.ndarray:
        result = np.asarray(getattr(self._estimator, self._method)(x2d))
        try:
            return result.reshape(x2d.shape[0], -1).astype(np.float32, copy=False)
        except (TypeError, ValueError):
            raise InvalidTypeError(
                f"{self._name()}.{self._method}() returned {result.dtype} values, which are not numbers; "
                "encode class labels as integers, or forward with method='predict_proba'."
            ) from None

    # ------------------------------------------------------------------ fitting
    def fit(self, x: Any, y: Any = None, **fit_kwargs: Any) -> ScikitModelWrapper:
        """Fit the estimator on a whole data set (inputs are flattened per sample).

        Args:
            x: Features ``(B, ...)``, numpy or anything ``np.asarray`` accepts.
            y: Targets ``(B,)`` or ``(B, ...)``, or ``None`` for unsupervised estimators.
            **fit_kwargs: Further arguments to the estimator's ``fit`` (``sample_weight``).

        Returns:
            ScikitModelWrapper: ``self``.

        Raises:
            InvalidArgumentError: If the shapes do not fit, or the estimator rejects the data.
        """
        return self._fit("fit", x, y, fit_kwargs)

    def partial_fit(self, x: Any, y: Any = None, **fit_kwargs: Any) -> ScikitModelWrapper:
        """Fit the estimator incrementally on one batch (estimators with ``partial_fit``: ``SGDRegressor``, ...).

        Raises:
            InvalidTypeError: If the estimator has no ``partial_fit``.
            InvalidArgumentError: If the shapes do not fit, or the estimator rejects the data.
        """
        if not callable(getattr(self._estimator, "partial_fit", None)):
            raise InvalidTypeError(
                f"{type(self._estimator).__name__} has no partial_fit(); fit it on all the data at once with fit()."
            )
        return self._fit("partial_fit", x, y, fit_kwargs)

    def _fit(self, how: str, x: Any, y: Any, fit_kwargs: dict[str, Any]) -> ScikitModelWrapper:
        incremental = how == "partial_fit" and self._fitted
        x2d = self._as_features(x, self._input_shape if incremental else self._declared_input)
        targets = self._as_targets(y, x2d.shape[0])
        args = (x2d,) if targets is None else (x2d, targets)
        try:
            getattr(self._estimator, how)(*args, **fit_kwargs)
        except (ValueError, TypeError) as exc:
            shapes = f"X {x2d.shape}" + ("" if targets is None else f", y {targets.shape}")
            raise InvalidArgumentError(f"{self._name()}.{how}() failed on {shapes}: {exc}") from exc
        if not incremental:
            self._input_shape = tuple(int(d) for d in np.shape(x)[1:])
        self._fitted = True
        self._built = True
        observed = tuple(self._outputs(x2d[:1]).shape[1:])
        if self._declared_output is not None and _feature_count(self._declared_output) != _feature_count(observed):
            raise InvalidArgumentError(
                f"{self._name()} was declared with output_shape={self._declared_output}, but its {self._method}() "
                f"gives {observed} per sample."
            )
        self._output_shape = self._declared_output or observed
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, x: Any, **kwargs: Any) -> np.ndarray:
        """Run the fitted estimator's :attr:`method` on a batch; returns float32 ``(B, *output_shape)``.

        Args:
            x: Features ``(B, ...)``; flattened per sample.
            **kwargs: Further arguments to the estimator's method.

        Raises:
            NotFittedError: If the estimator has not been fitted.
            InvalidArgumentError: If the per-sample shape differs from the one it was fitted on.
        """
        if not self._fitted:
            raise NotFittedError(
                f"{self._name()} is not fitted. A scikit-learn estimator learns with fit(X, y) on the whole training "
                "data, not by gradient steps: run a FitPhase first (FitPhase.from_split('fit', split='train')), or "
                "call model.fit(X, y)."
            )
        x2d = self._as_features(x, self._input_shape)
        if kwargs:
            result = np.asarray(getattr(self._estimator, self._method)(x2d, **kwargs))
            out = result.reshape(x2d.shape[0], -1).astype(np.float32, copy=False)
        else:
            out = self._outputs(x2d)
        if self._output_shape is None:
            self._output_shape = tuple(out.shape[1:])
        return out.reshape(x2d.shape[0], *self._output_shape)

    # ------------------------------------------------------------------ weights and state
    def get_weights(self) -> dict[str, np.ndarray]:
        """The fitted estimator's learned numbers (``components_``, ``coef_``, ``intercept_``...) as array copies.

        Only the top-level numeric arrays and scalars are returned (empty before fitting);
        :meth:`get_state` holds everything the estimator learned.
        """
        if not self._fitted:
            return {}
        return {
            name: np.array(value, copy=True)
            for name, value in vars(self._estimator).items()
            if name.endswith("_")
            and not name.startswith("_")
            and isinstance(value, (np.ndarray, np.generic))
            and np.asarray(value).dtype.kind in "biufc"
        }

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Overwrite learned numbers of the fitted estimator with those of :meth:`get_weights`.

        Raises:
            NotFittedError: If the estimator is not fitted (restore a whole state with :meth:`set_state`).
            InvalidArgumentError: If a name is not a learned array of the estimator, or its shape differs.
        """
        if not self._fitted:
            raise NotFittedError(
                f"{self._name()} is not fitted, so it has no arrays to overwrite; restore a saved state with "
                "set_state() or fit it first."
            )
        current = self.get_weights()
        for name, value in weights.items():
            if name not in current:
                raise InvalidArgumentError(f"{self._name()} has no learned array {name!r}; it has {sorted(current)}.")
            array = np.array(value, dtype=current[name].dtype, copy=True)
            if array.shape != current[name].shape:
                raise InvalidArgumentError(
                    f"{self._name()}: weight {name!r} has shape {current[name].shape}, not {array.shape}."
                )
            scalar = isinstance(getattr(self._estimator, name), np.generic)
            setattr(self._estimator, name, array[()] if scalar else array)

    def get_state(self) -> dict[str, Any]:
        """The shapes and, once fitted, everything the estimator learned, as numpy arrays and JSON values.

        Besides the estimator's own learned attributes, its parameters are kept with the state
        they learned, so that meta-estimators (a ``Pipeline``'s fitted steps) are restored too.

        Raises:
            SerializationError: If a learned attribute cannot be stored without pickling.
        """
        state = super().get_state()
        state[_FITTED] = self._fitted
        if self._fitted:
            name = type(self._estimator).__name__
            state[_ESTIMATOR_PARAMS] = encode_value(constructor_params(self._estimator) or {}, f"{name}.params")
            state[_ESTIMATOR_STATE] = get_learned_state(self._estimator)
        else:
            state[_ESTIMATOR_PARAMS], state[_ESTIMATOR_STATE] = {}, {}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output onto a new instance of the estimator's class.

        The wrapped estimator is replaced only when everything was restored.

        Raises:
            InvalidArgumentError: If ``state`` is not one :meth:`get_state` produced.
            SerializationError: If the state names a class that may not be imported, or the
                estimator cannot be rebuilt from its saved parameters.
        """
        if (
            not isinstance(state, Mapping)
            or _FITTED not in state
            or not isinstance(state.get(_ESTIMATOR_STATE), Mapping)
            or not isinstance(state.get(_ESTIMATOR_PARAMS), Mapping)
        ):
            raise InvalidArgumentError(
                f"A {type(self).__name__} state is the dict returned by get_state(), with {_FITTED!r}, "
                f"{_ESTIMATOR_PARAMS!r} and {_ESTIMATOR_STATE!r}; got {state!r:.200}."
            )
        if state[_FITTED]:
            params = decode_value(dict(state[_ESTIMATOR_PARAMS]), base=BaseEstimator, where=_ESTIMATOR_PARAMS)
            try:
                fresh = type(self._estimator)(**params)
            except TypeError as exc:
                raise SerializationError(
                    f"Cannot rebuild {type(self._estimator).__name__} from its saved parameters: {exc}"
                ) from None
            set_learned_state(fresh, state[_ESTIMATOR_STATE], base=BaseEstimator)
        else:
            fresh = clone(self._estimator)
        self._estimator = fresh
        self._fitted = bool(state[_FITTED])
        self._input_shape = normalize_shape(state.get("input_shape"), what="input_shape") or self._declared_input
        self._output_shape = normalize_shape(state.get("output_shape"), what="output_shape") or self._declared_output
        self._built = bool(state.get("is_built")) or self._fitted

    def __repr__(self) -> str:
        shapes = f", input_shape={self.input_shape}, output_shape={self.output_shape}" if self.is_built else ""
        return f"ScikitModelWrapper({self._estimator!r}, method={self._method!r}, fitted={self._fitted}{shapes})"
