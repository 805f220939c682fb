"""``TensorflowBaseModel``: a ModularML ``BaseModel`` that owns a Keras 3 model."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from modularml.backends import get_backend
from modularml.backends.common import accepts_keyword
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.models import BaseModel, ShapedModel

__all__ = ["TensorflowBaseModel", "weight_key"]

logger = logging.getLogger("modularml.tf.models")

#: A layer or variable name that Keras numbered to keep it unique (``dense_3``): the number is dropped
#: when the weights of two models built in one process are matched.
_AUTO_NUMBER = re.compile(r"_\d+(?=/|$)")


def weight_key(variable: Any) -> str:
    """The name a weight travels under: the variable's Keras path (``"dense_0/kernel"``)."""
    return str(getattr(variable, "path", None) or variable.name).removesuffix(":0")


def _without_numbers(key: str) -> str:
    return _AUTO_NUMBER.sub("", key)


class TensorflowBaseModel(ShapedModel):
    """Base class for ModularML-native TensorFlow / Keras 3 models.

    A subclass passes its constructor's keyword arguments to ``super().__init__`` (kept for config
    round trips, ``input_shape`` and ``output_shape`` included) and implements
    :meth:`_build_keras_model`, which returns the ``keras.Model`` for the per-sample shapes once they
    are known. Shapes left out are taken from :meth:`build` (ModularML infers them from the data); a
    model with ``requires_output_shape = False`` infers its output shape from the built Keras model.

    The forward pass is compiled with ``tf.function``: one trace per input signature (dtype,
    per-sample shape and training flag; the batch axis is left open, so a smaller last batch does
    not retrace). :attr:`trace_count` counts the traces. Called while TensorFlow traces (a
    compiled training step), the model's math is traced inline instead. Calls with keyword
    arguments run eagerly; ``tf.config.run_functions_eagerly(True)`` runs everything eagerly for
    debugging.

    Weights are the Keras model's variables (``model.weights`` order), as numpy arrays keyed by
    their Keras path (:meth:`get_weights`, :meth:`set_weights`). Variables are created on the CPU,
    or on the device set with :meth:`to_device` (``"cuda:<i>"`` is TensorFlow's ``/GPU:<i>``).

    Args:
        input_shape: Per-sample input shape (without the batch axis), or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to infer it.
        **init_args: The subclass's other constructor arguments.
    """

    #: Whether :meth:`build` needs an output shape (the built-in models size their head with it).
    requires_output_shape: bool = False

    def __init__(
        self,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
        **init_args: Any,
    ) -> None:
        shapes = {"input_shape": input_shape, "output_shape": output_shape}
        shapes = {key: value for key, value in shapes.items() if accepts_keyword(type(self), key, default=True)}
        BaseModel.__init__(self, "tensorflow", **shapes, **init_args)
        self._declare_shapes(input_shape, output_shape)
        self._device: str | None = None
        self._training = True
        self.model: keras.Model | None = None
        self._compiled: dict[tuple[Any, ...], Callable[[Any], Any]] = {}
        self._trace_count = 0

    # ------------------------------------------------------------------ building
    def build(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Create the Keras model for the given per-sample shapes (missing ones come from the constructor).

        Building a built model with the same (or no) shapes changes nothing.

        Args:
            input_shape: Per-sample input shape, without the batch axis.
            output_shape: Per-sample output shape, without the batch axis.
            force: Create a new Keras model (new weights) even if the model is built.

        Raises:
            InvalidArgumentError: If a needed shape is missing, disagrees with the declared one, or
                differs from the built one without ``force``.
        """
        shapes = self._build_shapes(input_shape, output_shape, force=force, required=(True, self.requires_output_shape))
        if shapes is None:
            return
        in_shape, out_shape = shapes
        with self._placement():
            model = self._build_keras_model(in_shape, out_shape)
            if not isinstance(model, keras.layers.Layer):
                raise InvalidTypeError(
                    f"{type(self).__name__}._build_keras_model returned {type(model).__name__}, not a keras.Model."
                )
            if not model.built:
                self._build_unbuilt(model, in_shape)
        self.model = model
        self._compiled = {}
        self._input_shape, self._output_shape = in_shape, out_shape
        self._built = True
        if out_shape is None:
            self._output_shape = self._infer_output_shape(in_shape)

    def _build_unbuilt(self, model: keras.layers.Layer, input_shape: tuple[int, ...]) -> None:
        """Build a Keras model that has no ``keras.Input``: ``build()``, else one call on zeros."""
        try:
            model.build((None, *input_shape))
        except Exception as exc:  # subclassed models without a build(): they build on their first call
            logger.debug("%s.build failed (%s); building by a call on zeros", type(model).__name__, exc)
        if not model.built or not model.weights:
            model(tf.zeros((1, *input_shape), dtype=keras.backend.floatx()), training=False)

    def _build_keras_model(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> keras.Model:
        """Return the Keras model for these per-sample shapes (created inside the model's device scope)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _build_keras_model(input_shape, ...).")

    def _infer_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The per-sample output shape of the Keras model (its static output shape, else one call on zeros)."""
        try:
            shape = self.model.compute_output_shape((None, *input_shape))
            if isinstance(shape, tuple | list) and all(d is None or isinstance(d, int) for d in shape):
                rest = tuple(shape[1:])
                if all(isinstance(d, int) for d in rest):
                    return rest
        except Exception as exc:  # any user model: fall back to a call
            logger.debug("compute_output_shape failed for %s: %s", type(self).__name__, exc)
        try:
            with self._placement():
                out = self.model(tf.zeros((2, *input_shape), dtype=self._float_dtype()), training=False)
            return tuple(int(d) for d in out.shape[1:]) if isinstance(out, tf.Tensor) else None
        except Exception as exc:  # the shape is then simply unknown
            logger.debug("Could not infer the output shape of %s: %s", type(self).__name__, exc)
            return None

    # ------------------------------------------------------------------ devices and modes
    @property
    def device(self) -> str:
        """Canonical name of the device the variables live on (or will be created on); ``"cpu"`` by default."""
        if self.model is not None:
            for variable in self.model.weights:
                return get_backend("tensorflow").device_of(variable.value)
        return self._device or "cpu"

    def to_device(self, device: str | None) -> TensorflowBaseModel:
        """Put the model's variables on ``device`` (``"cpu"``, ``"cuda:0"``); layers built later follow it.

        TensorFlow variables cannot move: a built model is rebuilt on the new device with its
        weights copied, so optimizers built over the old variables must be built again.

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        backend = get_backend("tensorflow")
        canonical = backend.canonical_device(device)
        if canonical == self._device or (self._device is None and canonical == "cpu" and self.model is None):
            self._device = canonical
            return self
        self._device = canonical
        if self.model is not None and self._built:
            weights = self.get_weights()
            self.build(self._input_shape, self._output_shape if self.requires_output_shape else None, force=True)
            self.set_weights(weights)
        return self

    def _placement(self) -> contextlib.AbstractContextManager[Any]:
        return tf.device(get_backend("tensorflow").tf_device(self._device or "cpu"))

    def set_training(self, mode: bool = True) -> TensorflowBaseModel:
        """Run dropout and batch normalisation in training (``True``) or inference (``False``) behaviour.

        The flag is passed as Keras' ``training`` argument on every forward call; graphs put frozen
        nodes and evaluation in inference mode.
        """
        self._training = bool(mode)
        return self

    def train(self, mode: bool = True) -> TensorflowBaseModel:
        """Training mode (``mode=True``) or inference mode, as torch modules spell it; see :meth:`set_training`."""
        return self.set_training(mode)

    def eval(self) -> TensorflowBaseModel:
        """Inference mode (dropout off, batch normalisation with its moving statistics)."""
        return self.set_training(False)

    @property
    def training(self) -> bool:
        """Whether forward calls run in training mode."""
        return self._training

    # ------------------------------------------------------------------ parameters and inputs
    def parameters(self) -> list[tf.Variable]:
        """The trainable variables of the built model, as ``tf.Variable`` (what optimizers and tapes use)."""
        if self.model is None:
            return []
        return [variable.value for variable in self.model.trainable_variables]

    def _float_dtype(self) -> tf.DType:
        if self.model is not None:
            for variable in self.model.weights:
                dtype = tf.as_dtype(variable.dtype)
                if dtype.is_floating:
                    return dtype
        return tf.as_dtype(keras.backend.floatx())

    def _prepare_input(self, x: Any, *, cast_integers: bool = True) -> tf.Tensor:
        """``x`` as a tensor in the model's float dtype (integers too, unless ``cast_integers`` is False)."""
        if not isinstance(x, tf.Tensor | tf.Variable):
            x = tf.convert_to_tensor(np.asarray(x))
        if x.dtype.is_floating or (cast_integers and (x.dtype.is_integer or x.dtype == tf.bool)):
            dtype = self._float_dtype()
            if x.dtype != dtype:
                x = tf.cast(x, dtype)
        return x

    def _check_input(self, x: tf.Tensor) -> None:
        name = type(self).__name__
        if x.shape.rank is None or x.shape.rank < 1:
            raise InvalidArgumentError(f"{name} expects a batch (batch axis first); got a scalar.")
        if not self._built:
            self.build(input_shape=tuple(int(d) for d in x.shape[1:]))
        if tuple(x.shape[1:]) != self._input_shape:
            raise InvalidArgumentError(
                f"{name} expects inputs of per-sample shape {self._input_shape}; got a batch of shape {tuple(x.shape)}."
            )

    # ------------------------------------------------------------------ forward
    @property
    def trace_count(self) -> int:
        """How many times the compiled forward pass was traced (once per input signature and mode)."""
        return self._trace_count

    def _compiled_call(self, x: tf.Tensor, training: bool) -> Callable[[Any], Any]:
        key = (x.dtype, tuple(x.shape[1:]), training)
        fn = self._compiled.get(key)
        if fn is None:
            spec = tf.TensorSpec((None, *x.shape[1:]), x.dtype)
            fn = tf.function(functools.partial(self._traced_call, training=training), input_signature=[spec])
            self._compiled[key] = fn
        return fn

    def _traced_call(self, x: tf.Tensor, *, training: bool) -> Any:
        self._trace_count += 1  # runs when TensorFlow traces, not on every call
        return self.call(x, training=training)

    def call(self, x: tf.Tensor, *, training: bool) -> Any:
        """The math of one forward pass (traced by :meth:`forward`); calls the Keras model by default."""
        return self.model(x, training=training)

    def forward(self, x: Any, **kwargs: Any) -> Any:
        """Map a batch ``(batch, *input_shape)`` to the model's outputs; builds from ``x`` if needed.

        Runs the compiled call (in the model's training mode) unless keyword arguments are given;
        those go to the Keras model's eager call.
        """
        x = self._prepare_input(x)
        self._check_input(x)
        with self._placement():
            if kwargs:
                return self.model(x, training=kwargs.pop("training", self._training), **kwargs)
            if not tf.executing_eagerly():  # inside a compiled step: traced inline, with static shapes
                return self.call(x, training=self._training)
            return self._compiled_call(x, self._training)(x)

    def __call__(self, x: Any, **kwargs: Any) -> Any:
        """The same as :meth:`forward`."""
        return self.forward(x, **kwargs)

    # ------------------------------------------------------------------ weights
    def _variables(self) -> list[Any]:
        return list(self.model.weights) if self.model is not None else []

    def _seed_variables(self) -> list[Any]:
        """The model's variables that are not weights: the states of its layers' SeedGenerators (dropout)."""
        if self.model is None:
            return []
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def get_state(self) -> dict[str, Any]:
        """The learned state (see :meth:`BaseModel.get_state`) plus ``seed_states``: each layer SeedGenerator's state.

        A resumed run then draws the same dropout masks as the uninterrupted one.
        """
        state = super().get_state()
        state["seed_states"] = {v.path: np.array(v.numpy(), copy=True) for v in self._seed_variables()}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (seed states by variable path, where the model has them)."""
        super().set_state(state)
        saved = dict(state.get("seed_states") or {})
        variables = self._seed_variables()
        if not all(v.path in saved for v in variables) and len(saved) == len(variables):
            saved = dict(zip((v.path for v in variables), saved.values(), strict=True))  # names renumbered by Keras
        for variable in variables:
            if variable.path in saved:
                variable.assign(np.asarray(saved[variable.path]).astype(variable.dtype))

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every variable (trainable or not) as numpy arrays, keyed by Keras path, in ``weights`` order.

        Raises:
            InvalidArgumentError: If two variables share a path (a Keras model with clashing names).
        """
        weights: dict[str, np.ndarray] = {}
        for variable in self._variables():
            key = weight_key(variable)
            if key in weights:
                raise InvalidArgumentError(
                    f"{type(self).__name__} has two variables named {key!r}; give its layers unique names."
                )
            weights[key] = np.array(variable.numpy(), copy=True)
        return weights

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Write weights from :meth:`get_weights` into the built model, in place (exactly).

        Keys match the variables' Keras paths; when they differ only in the numbers Keras adds to
        keep names unique (``dense_3`` against ``dense``, a model built twice in one process), they
        match in ``weights`` order. Nothing changes unless every weight fits.

        Raises:
            InvalidArgumentError: If the model is not built, a weight is missing or unexpected, or a
                shape differs.
        """
        name = type(self).__name__
        if not self._built or self.model is None:
            raise InvalidArgumentError(f"{name} is not built; build it (or use set_state) before set_weights().")
        if not isinstance(weights, Mapping):
            raise InvalidArgumentError(f"{name}.set_weights takes the dict from get_weights(); got {weights!r:.80}.")
        variables = self._variables()
        keys = [weight_key(v) for v in variables]
        given = list(weights)
        if set(given) == set(keys):
            pairs = [(v, weights[k]) for v, k in zip(variables, keys, strict=True)]
        elif len(given) == len(keys) and [_without_numbers(k) for k in given] == [_without_numbers(k) for k in keys]:
            pairs = [(v, weights[k]) for v, k in zip(variables, given, strict=True)]
        else:
            missing, unexpected = sorted(set(keys) - set(given)), sorted(set(given) - set(keys))
            raise InvalidArgumentError(
                f"{name} weights do not match: missing {missing}, unexpected {unexpected}. Use the dict from "
                "get_weights() of a model built with the same arguments and shapes."
            )
        arrays = []
        for variable, value in pairs:
            array = np.asarray(value)
            if tuple(array.shape) != tuple(variable.shape):
                raise InvalidArgumentError(
                    f"{name} weight {weight_key(variable)!r} has shape {tuple(variable.shape)}; got {array.shape}."
                )
            arrays.append(array.astype(variable.dtype, copy=False))
        for (variable, _), array in zip(pairs, arrays, strict=True):
            variable.assign(array)

    def count_params(self) -> int:
        """The number of weights (every variable's elements)."""
        return int(sum(int(np.prod(v.shape)) for v in self._variables()))

    def layers(self) -> Iterator[keras.layers.Layer]:
        """Every layer of the Keras model, nested ones included (empty before building)."""
        pending = list(getattr(self.model, "layers", ())) if self.model is not None else []
        while pending:
            layer = pending.pop(0)
            yield layer
            pending.extend(getattr(layer, "layers", ()))

    def __repr__(self) -> str:
        return BaseModel.__repr__(self)
