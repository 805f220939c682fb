"""``TensorflowModelWrapper``: any Keras 3 model as a ModularML model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from modularml.backends.common import accepts_keyword
from modularml.backends.components import import_path
from modularml.errors import InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.models import BaseModel
from modularml.plugins.resolver import resolve
from modularml_tf.models.base import TensorflowBaseModel

__all__ = ["TensorflowModelWrapper"]


class TensorflowModelWrapper(TensorflowBaseModel):
    """Wraps a Keras model (``keras.Model``, ``keras.Sequential``, or any Keras layer) for a model graph.

    Give either a model instance (``model=``), used as it is, or a class or factory
    (``model_class=``) with ``model_kwargs``, called when the model is built: if it takes
    ``input_shape`` or ``output_shape`` keyword arguments and ``model_kwargs`` do not set them,
    the shapes inferred from the data are passed in. A Keras model that is not built yet is built
    for the inferred input shape; an output shape left out is read from the built model.

    Inputs keep integer dtypes (token indices for an ``Embedding``); floating inputs are cast to the
    model's float dtype. Only a wrapper built from a class or factory with an import path can be
    saved (an instance is not code that can be stored); its weights are saved as numpy arrays, never
    as a ``.keras`` archive.

    Args:
        model: The Keras model to wrap.
        model_class: A Keras model class, or a factory returning a Keras model, built lazily.
        model_kwargs: Keyword arguments for ``model_class``.
        input_shape: Per-sample input shape, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to infer it.

    Raises:
        InvalidArgumentError: If neither or both of ``model`` and ``model_class`` are given.
        InvalidTypeError: If ``model`` is not a Keras model (or is already a ModularML model).

    Example:
        >>> def head(input_shape, width=16):
        ...     return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(width), keras.layers.Dense(1)])
        >>> wrapper = TensorflowModelWrapper(model_class=head, model_kwargs={"width": 8})
        >>> wrapper.build(input_shape=(4,))  # head(width=8, input_shape=(4,))
    """

    def __init__(
        self,
        model: keras.layers.Layer | None = None,
        *,
        model_class: type[keras.layers.Layer] | Callable[..., keras.layers.Layer] | str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
    ) -> None:
        if (model is None) == (model_class is None):
            raise InvalidArgumentError(
                "TensorflowModelWrapper takes either model= (a Keras model instance) or model_class= (a class or "
                f"factory, with model_kwargs=); got model={model!r:.80} and model_class={model_class!r}."
            )
        if model is not None and (isinstance(model, BaseModel) or not isinstance(model, keras.layers.Layer)):
            raise InvalidTypeError(
                f"TensorflowModelWrapper wraps a Keras model (keras.Model or keras.layers.Layer); got "
                f"{type(model).__name__}. A ModularML model needs no wrapper."
            )
        if isinstance(model_class, str):  # from a file or config: a Keras class, or a registered factory
            model_class = resolve(
                model_class,
                what="Keras model class",
                entry="model_class",
                kind="models",
                backend="tensorflow",
                base=keras.layers.Layer,
                functions=True,
            )
        if model_class is not None and not callable(model_class):
            raise InvalidTypeError(f"model_class is a Keras model class or a factory; got {model_class!r}.")
        if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
            raise InvalidArgumentError(f"model_kwargs is a dict of keyword arguments; got {model_kwargs!r}.")
        kwargs = dict(model_kwargs or {})
        if model is not None:
            super().__init__(input_shape=input_shape, output_shape=output_shape, model=model)
        else:
            super().__init__(
                input_shape=input_shape, output_shape=output_shape, model_class=model_class, model_kwargs=kwargs
            )
        self._model_class = model_class
        self._model_kwargs = kwargs
        self._instance = model
        self.model = model
        if model is not None and model.built and self._declared_input is None:
            self._adopt_built_shapes(model)

    def _adopt_built_shapes(self, model: keras.layers.Layer) -> None:
        """A built instance (``keras.Input`` first) knows its shapes: the wrapper is built at once."""
        shape = getattr(model, "input_shape", None)
        if not (isinstance(shape, tuple) and len(shape) >= 1 and all(isinstance(d, int) for d in shape[1:])):
            return
        self.build(input_shape=tuple(shape[1:]))

    def get_init_args(self) -> dict[str, Any]:
        """The constructor's arguments; ``model_class`` as its ``"module:QualName"`` import path when it has one."""
        args = super().get_init_args()
        if self._model_class is not None:
            path = import_path(self._model_class)
            args["model_class"] = path if path is not None else self._model_class
        return args

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Save the wrapper (its class's import path, arguments and weights as arrays).

        Raises:
            SerializationError: If it wraps an instance, or a class without an import path.
        """
        if self._model_class is None or import_path(self._model_class) is None:
            raise SerializationError(
                f"This TensorflowModelWrapper wraps {'an instance' if self._model_class is None else 'a local class'}, "
                "which cannot be saved as code. Wrap a module-level class or factory with model_class=..., "
                "model_kwargs=... instead, or save its weights (get_weights())."
            )
        return super().save(filepath, overwrite=overwrite)

    def _build_keras_model(
        self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None
    ) -> keras.layers.Layer:
        if self._model_class is None:
            return self._instance
        kwargs = dict(self._model_kwargs)
        for key, value in (("input_shape", input_shape), ("output_shape", output_shape)):
            if key not in kwargs and value is not None and accepts_keyword(self._model_class, key, var_keyword=False):
                kwargs[key] = value
        try:
            model = self._model_class(**kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(f"Cannot build {self._model_class!r} with {kwargs}: {exc}") from exc
        if not isinstance(model, keras.layers.Layer):
            raise InvalidTypeError(
                f"model_class {self._model_class!r} returned {type(model).__name__}, not a Keras model."
            )
        return model

    def build(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Build (or adopt) the Keras model for these shapes; see :meth:`TensorflowBaseModel.build`.

        A wrapped instance is not re-created by ``force``: its weights stay.
        """
        super().build(input_shape, output_shape, force=force)

    def forward(self, x: Any, **kwargs: Any) -> Any:
        """Call the wrapped model on ``x`` (integer inputs keep their dtype); builds from ``x`` if needed."""
        x = self._prepare_input(x, cast_integers=False)
        self._check_input(x)
        with self._placement():
            if kwargs:
                return self.model(x, training=kwargs.pop("training", self._training), **kwargs)
            if not tf.executing_eagerly():  # inside a compiled step: traced inline, with static shapes
                return self.call(x, training=self._training)
            return self._compiled_call(x, self._training)(x)
