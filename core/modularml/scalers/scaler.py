"""``Scaler``: one wrapper for every scaler, whichever plugin or library provides it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modularml.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NotFittedError,
    NotInvertibleError,
    SerializationError,
)
from modularml.scalers.estimator_state import (
    class_path,
    constructor_params,
    get_learned_state,
    has_learned_state,
    is_sklearn_like,
    is_sklearn_like_class,
    set_learned_state,
)
from modularml.scalers.registry import registered_name, resolve_registered_scaler, supported_scalers

__all__ = ["FILE_KIND", "Scaler"]

#: The file kind of a saved scaler: ``<name>.sc.mml``.
FILE_KIND = "sc"
_IS_FIT = "is_fit"


def _has_own_state(obj: Any) -> bool:
    return callable(getattr(obj, "get_state", None)) and callable(getattr(obj, "set_state", None))


class Scaler:
    """Wrapper for feature scaling and transformation operations.

    Provides a standardized interface for initializing, fitting, transforming, and serializing
    feature scaling objects: a scaler registered by name (the core's ``"PerSampleMinMaxScaler"``,
    or ``"StandardScaler"`` with ``pip install "modularml[sklearn]"``), a scaler class, or an
    instance of anything scikit-learn-like (``fit`` and ``transform``, optionally
    ``inverse_transform``, on 2-D arrays).

    Scalers whose statistics belong to each sample (the core's per-sample scalers, which set
    ``per_sample = True``) take the rows' ``sample_ids`` in :meth:`transform` and
    :meth:`inverse_transform`; every other scaler ignores them.

    Args:
        scaler (str | Any): Name of a registered scaler, a scaler class, or an instance.
        scaler_kwargs (dict[str, Any] | None): Keyword arguments passed when constructing the
            scaler (not allowed with an instance).

    Raises:
        ValueError: If a named scaler is not registered (for a scaler of a known extra, the
            message says what to ``pip install``), or ``scaler_kwargs`` are given with an instance.
        TypeError: If ``scaler`` is not scikit-learn-like, or ``scaler_kwargs`` do not fit it.

    Example:
        >>> scaler = Scaler("PerSampleMinMaxScaler", scaler_kwargs={"feature_range": (-1, 1)})
        >>> scaled = scaler.fit_transform(np.array([[1.0, 3.0], [2.0, 6.0]]))
    """

    def __init__(self, scaler: str | Any, scaler_kwargs: dict[str, Any] | None = None) -> None:
        if scaler_kwargs is not None and not isinstance(scaler_kwargs, Mapping):
            raise InvalidTypeError(f"scaler_kwargs is a dict of keyword arguments; got {scaler_kwargs!r}.")
        kwargs = dict(scaler_kwargs or {})
        self._template: Any = None  # an unfitted copy, kept only for instances that cannot be rebuilt
        if isinstance(scaler, Scaler):
            if kwargs:
                raise InvalidArgumentError("scaler_kwargs cannot be applied to an existing Scaler; build a new one.")
            self._name, self._factory, self._kwargs = scaler._name, scaler._factory, copy.deepcopy(scaler._kwargs)
            self._template = scaler._template
            self._obj = copy.deepcopy(scaler._obj)
            self._is_fit = scaler._is_fit
            return
        if isinstance(scaler, str):
            self._name, self._factory = resolve_registered_scaler(scaler)
            self._kwargs: dict[str, Any] | None = kwargs
            self._obj = self._construct(self._factory, kwargs, repr(scaler))
            self._is_fit = False
        elif isinstance(scaler, type):
            if not (callable(getattr(scaler, "fit", None)) and callable(getattr(scaler, "transform", None))):
                raise InvalidTypeError(
                    f"{scaler.__qualname__} is not a scaler class: it needs fit() and transform() methods (the "
                    "scikit-learn transformer shape)."
                )
            self._name, self._factory, self._kwargs = registered_name(scaler), scaler, kwargs
            self._obj = self._construct(scaler, kwargs, scaler.__qualname__)
            self._is_fit = False
        else:
            if not is_sklearn_like(scaler):
                raise InvalidTypeError(
                    f"Expected a registered scaler name, a scaler class or a scaler instance with fit() and "
                    f"transform(); got {type(scaler).__module__}.{type(scaler).__qualname__} {scaler!r:.80}."
                )
            if kwargs:
                raise InvalidArgumentError(
                    f"scaler_kwargs {sorted(kwargs)} cannot be applied to an existing {type(scaler).__name__} "
                    "instance; pass its class (or registered name) with scaler_kwargs instead."
                )
            self._name, self._factory = registered_name(type(scaler)), type(scaler)
            self._kwargs = constructor_params(scaler)
            if self._kwargs is None:
                self._template = copy.deepcopy(scaler)
            self._obj = scaler
            self._is_fit = has_learned_state(scaler)

    @staticmethod
    def _construct(factory: Any, kwargs: dict[str, Any], what: str) -> Any:
        try:
            obj = factory(**kwargs)
        except TypeError as exc:
            raise InvalidTypeError(f"Cannot build scaler {what} with scaler_kwargs {kwargs!r}: {exc}") from None
        if not is_sklearn_like(obj):
            raise InvalidTypeError(f"Scaler {what} built a {type(obj).__name__}, which has no fit() and transform().")
        return obj

    # ------------------------------------------------------------------ description
    @property
    def scaler(self) -> Any:
        """The wrapped scaler object."""
        return self._obj

    @property
    def scaler_name(self) -> str:
        """The registered name of the scaler, or its class name if it is not registered."""
        return self._name or type(self._obj).__name__

    @property
    def scaler_kwargs(self) -> dict[str, Any]:
        """The constructor arguments (a copy); empty if they are unknown."""
        return copy.deepcopy(self._kwargs) if self._kwargs is not None else {}

    @property
    def is_fit(self) -> bool:
        """Whether the scaler has been fit."""
        return self._is_fit

    @property
    def per_sample(self) -> bool:
        """Whether the scaler keeps statistics per sample (it then takes ``sample_ids``)."""
        return bool(getattr(self._obj, "per_sample", False))

    @property
    def has_inverse(self) -> bool:
        """Whether the wrapped scaler has an ``inverse_transform``."""
        return callable(getattr(self._obj, "inverse_transform", None))

    @classmethod
    def get_supported_scalers(cls) -> dict[str, Any]:
        """Return the registry of supported scalers.

        Returns:
            dict[str, Any]: Registered scaler names -> their classes (a :class:`LazyClass` for a
            class whose library is imported only when the scaler is used).
        """
        return dict(supported_scalers)

    # ------------------------------------------------------------------ fitting and transforming
    def _input(self, data: Any, what: str) -> np.ndarray:
        array = np.asarray(data)
        if array.ndim != 2:
            raise InvalidArgumentError(
                f"Scaler {self.scaler_name!r}.{what}() takes 2-D data (n_samples, n_features); got shape "
                f"{array.shape}. Reshape it, e.g. data.reshape(len(data), -1)."
            )
        return array

    def _output(self, result: Any, n_rows: int, what: str) -> np.ndarray:
        if hasattr(result, "toarray"):  # a sparse matrix
            result = result.toarray()
        out = np.asarray(result)
        if out.ndim != 2 or out.shape[0] != n_rows:
            raise InvalidArgumentError(
                f"Scaler {self.scaler_name!r}.{what}() returned shape {out.shape} for {n_rows} rows; a scaler must "
                "return one 2-D row per input row."
            )
        return out

    def _check_fit(self, what: str) -> None:
        if not self._is_fit:
            raise NotFittedError(f"Scaler {self.scaler_name!r} has not been fit; call fit() before {what}().")

    def fit(self, data: np.ndarray) -> Scaler:
        """Fit the wrapped scaler to input data.

        Args:
            data (np.ndarray): Array of shape (n_samples, n_features) used to compute scaling parameters.

        Returns:
            Scaler: Returns self.

        Raises:
            ValueError: If ``data`` is not 2-D.
        """
        array = self._input(data, "fit")
        self._is_fit = False
        self._obj.fit(array)
        self._is_fit = True
        return self

    def transform(self, data: np.ndarray, *, sample_ids: Any = None) -> np.ndarray:
        """Apply the fitted transformation to new data.

        Args:
            data (np.ndarray): Input data to transform. Must match the feature layout used during fitting.
            sample_ids: One id per row, recorded by per-sample scalers (ignored by others).

        Returns:
            np.ndarray: Transformed data array.

        Raises:
            RuntimeError: If the scaler has not been fit.
        """
        self._check_fit("transform")
        array = self._input(data, "transform")
        method = self._obj.transform
        result = method(array, sample_ids=sample_ids) if self.per_sample else method(array)
        return self._output(result, len(array), "transform")

    def fit_transform(self, data: np.ndarray, *, sample_ids: Any = None) -> np.ndarray:
        """Fit the scaler and transform the data in a single step.

        Args:
            data (np.ndarray): Input data of shape (n_samples, n_features).
            sample_ids: One id per row, recorded by per-sample scalers (ignored by others).

        Returns:
            np.ndarray: Transformed data after fitting the scaler.
        """
        return self.fit(data).transform(data, sample_ids=sample_ids)

    def inverse_transform(self, data: np.ndarray, *, sample_ids: Any = None) -> np.ndarray:
        """Reverse the transformation applied by the scaler, if supported.

        Args:
            data (np.ndarray): Transformed data to invert.
            sample_ids: The rows' ids as given to :meth:`transform` (per-sample scalers need them
                unless the rows are those of the latest call, in order).

        Returns:
            np.ndarray: Original-scale data.

        Raises:
            RuntimeError: If the scaler has not been fit.
            NotImplementedError: If the underlying scaler lacks ``inverse_transform()``.
        """
        self._check_fit("inverse_transform")
        if not self.has_inverse:
            raise NotInvertibleError(
                f"Scaler {self.scaler_name!r} ({type(self._obj).__qualname__}) has no inverse_transform(), so its "
                "output cannot be mapped back to original units."
            )
        array = self._input(data, "inverse_transform")
        method = self._obj.inverse_transform
        result = method(array, sample_ids=sample_ids) if self.per_sample else method(array)
        return self._output(result, len(array), "inverse_transform")

    def clone_unfitted(self) -> Scaler:
        """Create a fresh, unfitted Scaler with the same config.

        Returns:
            Scaler: Unfit clone that shares configuration but no learned state.
        """
        clone = Scaler.__new__(Scaler)
        clone._name, clone._factory, clone._template = self._name, self._factory, self._template
        clone._kwargs = copy.deepcopy(self._kwargs)
        clone._obj = self._fresh()
        clone._is_fit = False
        return clone

    def _fresh(self) -> Any:
        """A new, unfitted wrapped object."""
        if self._kwargs is None:
            return copy.deepcopy(self._template)
        return self._construct(self._factory, copy.deepcopy(self._kwargs), repr(self.scaler_name))

    # ------------------------------------------------------------------ config and state
    def get_config(self) -> dict[str, Any]:
        """Return configuration required to reconstruct this Scaler.

        Returns:
            dict[str, Any]: ``{"scaler": <registered name or "module:Class">, "scaler_kwargs": {...}}``.

        Raises:
            SerializationError: If the wrapped instance's constructor arguments are unknown (it
                has no ``get_params()`` and no attributes named like its parameters).
        """
        if self._kwargs is None:
            raise SerializationError(
                f"Cannot describe scaler {type(self._obj).__qualname__}: its constructor arguments are unknown. Give "
                "the class a get_params() method, or build the Scaler from the class and scaler_kwargs."
            )
        target = self._name if self._name is not None else class_path(self._factory)
        return {"scaler": target, "scaler_kwargs": copy.deepcopy(self._kwargs)}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, allow_packaged_code: bool = False) -> Scaler:
        """Construct a Scaler from configuration (unfitted).

        A registered name is looked up in the scaler registry. A class path resolves through the
        plugin layer's resolver (:mod:`modularml.plugins.resolver`): a registered scaler class, or a
        scikit-learn-like class defined in modularml, an installed plugin or an installed backend's
        framework; a class of your own only with ``allow_packaged_code=True`` (or register it through
        a plugin's ``register_scalers`` hook).

        Args:
            config (dict[str, Any]): Output of :meth:`get_config`.
            allow_packaged_code (bool): Allow a scaler class from any module.

        Returns:
            Scaler: The unfitted scaler.

        Raises:
            ValueError: If the config is malformed or names a scaler that is not available
                (``SerializationError`` when the class may not be used).
        """
        from modularml.plugins.resolver import loading, resolve

        if not isinstance(config, Mapping) or not isinstance(config.get("scaler"), str):
            raise InvalidArgumentError(
                f"A Scaler config is {{'scaler': name, 'scaler_kwargs': {{...}}}}; got {config!r:.200}."
            )
        target = config["scaler"]
        kwargs = config.get("scaler_kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise InvalidArgumentError(f"A Scaler config's scaler_kwargs is a dict; got {kwargs!r:.200}.")
        if ":" in target:
            with loading(allow_packaged_code=allow_packaged_code, what="scaler"):
                factory = resolve(
                    target, what="scaler class", entry="config['scaler']", kind="scalers", base=is_sklearn_like_class
                )
            return cls(factory, kwargs)
        return cls(target, kwargs)

    def get_state(self) -> dict[str, Any]:
        """Return the learned state of the wrapped scaler.

        Learned attributes are numpy arrays and JSON values (never pickled objects).

        Returns:
            dict[str, Any]: ``is_fit`` and every learned attribute.

        Raises:
            SerializationError: If a learned attribute cannot be stored without pickling.
        """
        if not self._is_fit:
            return {_IS_FIT: False}
        learned = self._obj.get_state() if _has_own_state(self._obj) else get_learned_state(self._obj)
        return {_IS_FIT: True, **learned}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state captured via :meth:`get_state`.

        The state is applied to a fresh instance, which replaces the wrapped one only when
        everything was restored.

        Args:
            state (dict[str, Any]): Dictionary previously produced by :meth:`get_state`.

        Raises:
            ValueError: If the state is malformed or cannot be applied.
        """
        if not isinstance(state, Mapping) or _IS_FIT not in state:
            raise InvalidArgumentError(f"A Scaler state is the dict returned by get_state(); got {state!r:.200}.")
        fresh = self._fresh()
        learned = {k: v for k, v in state.items() if k != _IS_FIT}
        if state[_IS_FIT]:
            if _has_own_state(fresh):
                fresh.set_state(learned)
            else:
                set_learned_state(fresh, learned)
        self._obj = fresh
        self._is_fit = bool(state[_IS_FIT])

    # ------------------------------------------------------------------ files
    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serialize this Scaler to disk (config as JSON, learned state as ``.npy`` arrays).

        Args:
            filepath (Path): Destination path; the name is completed to ``<name>.sc.mml``.
            overwrite (bool): Whether to overwrite an existing file.

        Returns:
            Path: Actual file path written by the serializer.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If the config or state cannot be stored without pickling.
        """
        from modularml.io import write_container

        return write_container(
            filepath, kind=FILE_KIND, cls=Scaler, config=self.get_config(), state=self.get_state(), overwrite=overwrite
        )

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False) -> Scaler:
        """Load a Scaler from disk.

        Nothing is unpickled and no code from the file runs; the scaler class comes from the
        scaler registry or from modularml, its installed plugins and backend frameworks. The
        whole file is read and checked before the scaler is built.

        Args:
            filepath (Path): Path to a serialized scaler artifact.
            allow_packaged_code (bool): Allow the scaler class (and nested estimator classes of its
                learned state) to come from any module, not only modularml, installed plugins and
                backend frameworks.

        Returns:
            Scaler: Reloaded scaler instance.

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is damaged, not a scaler, or names an unavailable scaler.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND)
        container.require_class(Scaler)
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="scaler"):
            scaler = cls.from_config(container.config, allow_packaged_code=allow_packaged_code)
            scaler.set_state(container.state)
        return scaler

    def __repr__(self) -> str:
        kwargs = f", scaler_kwargs={self._kwargs!r}" if self._kwargs else ""
        return f"Scaler({self.scaler_name!r}{kwargs}, is_fit={self._is_fit})"
