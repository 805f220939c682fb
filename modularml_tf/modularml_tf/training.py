"""The trainable half of the TensorFlow backend: models, losses, optimizers and gradient steps.

:class:`TensorflowTraining` implements what :class:`~modularml.backends.TrainableBackendProtocol`
adds to the tensor ops; :class:`~modularml_tf.backend.TensorflowBackend` inherits it. Losses and
optimizers are the registered short names (:mod:`modularml_tf.plugin`), then every class of
``keras.losses`` and ``keras.optimizers`` by name (:mod:`modularml_tf.losses`,
:mod:`modularml_tf.optimizers`).

A training step records the forward pass on a ``tf.GradientTape`` (:meth:`gradient_scope`); the
models' forward passes are compiled ``tf.function``s (traced once per input signature, see
:class:`~modularml_tf.models.TensorflowBaseModel`), the fused mean of an element-wise loss is one
compiled function per loss, and the optimizer update is compiled once per optimizer and set of
variables (:meth:`apply_gradients`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import DTypeLike

from modularml.backends.common import check_scalar_loss
from modularml.backends.components import find_component, registered_components
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.models import BaseModel, check_model_of
from modularml_tf.losses import ELEMENTWISE_MEAN, KerasLoss, framework_losses, is_keras_loss, keras_reduction
from modularml_tf.optimizers import (
    framework_optimizers,
    optimizer_kwargs,
    optimizer_state_from_numpy,
    optimizer_state_to_numpy,
)

__all__ = ["TensorflowTraining"]


class _CompiledUpdates:
    """The compiled ``optimizer.apply`` functions of one optimizer, one per tuple of variables it updates."""

    def __init__(self) -> None:
        self.functions: dict[tuple[int, ...], tuple[Callable[..., Any], list[Any]]] = {}
        self.traces = 0


class _CompiledStep:
    """One compiled training step (forward, losses, gradients, update) and how often it was traced."""

    def __init__(self) -> None:
        self.function: Callable[..., Any] | None = None
        self.traces = 0


class TensorflowTraining:
    """The :class:`~modularml.backends.TrainableBackendProtocol` methods of the TensorFlow backend.

    A mixin of :class:`~modularml_tf.backend.TensorflowBackend`, whose ``name``, ``tf_device`` and
    ``canonical_device`` it uses.
    """

    name: str

    #: The key of the global optimizer's variables in ``ModelGraph.get_optimizer_parameters()``.
    optimizer_parameters_key = "variables"

    tf_device: Callable[[str | None], str]

    # -- models -----------------------------------------------------------------------------
    def claims_model(self, obj: Any) -> bool:
        """Whether ``obj`` is a raw Keras model or layer (not already a ``BaseModel``); imports nothing."""
        keras_module = sys.modules.get("keras")
        if keras_module is None or isinstance(obj, BaseModel):
            return False
        layers = getattr(keras_module, "layers", None)
        layer_class = getattr(layers, "Layer", None)
        return isinstance(layer_class, type) and isinstance(obj, layer_class)

    def wrap_model(self, obj: Any) -> BaseModel:
        """Wrap a Keras model in a :class:`~modularml_tf.models.TensorflowModelWrapper`; tensorflow models pass through.

        Raises:
            InvalidTypeError: If ``obj`` is neither a Keras model nor a tensorflow ``BaseModel``.
        """
        if isinstance(obj, BaseModel):
            if obj.backend == self.name:
                return obj
            raise InvalidTypeError(f"{type(obj).__name__} is a {str(obj.backend)!r} model, not a tensorflow model.")
        if isinstance(obj, keras.layers.Layer):
            from modularml_tf.models import TensorflowModelWrapper

            return TensorflowModelWrapper(obj)
        raise InvalidTypeError(
            f"The tensorflow backend wraps Keras models (keras.Model, keras.Sequential, keras layers); got "
            f"{type(obj).__name__}. Pass a Keras model, or use TensorflowModelWrapper(model_class=..., "
            "model_kwargs=...)."
        )

    def model_parameters(self, model: BaseModel) -> list[tf.Variable]:
        """The trainable variables of a built tensorflow model, as ``tf.Variable``.

        Raises:
            InvalidTypeError: If ``model`` is not a tensorflow ``BaseModel``.
            InvalidArgumentError: If the model is not built yet.
        """
        check_model_of(
            model,
            self.name,
            expected="a tensorflow-backend BaseModel (wrap Keras models with backend.wrap_model())",
        )
        return list(model.parameters())

    def parameter_from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | tf.DType | None = None, device: str | None = None
    ) -> tf.Variable:
        """A new trainable ``tf.Variable`` holding a copy of ``array`` (integer and bool arrays become float32)."""
        data = np.array(array, copy=True)
        if dtype is not None:
            target = dtype if isinstance(dtype, tf.DType) else tf.as_dtype(np.dtype(dtype))
        else:
            target = tf.as_dtype(data.dtype) if data.dtype.kind in "fc" else tf.float32
        with tf.device(self.tf_device(device)):
            return tf.Variable(tf.cast(tf.convert_to_tensor(data), target), trainable=True)

    # -- losses -----------------------------------------------------------------------------
    def resolve_loss(self, name: str) -> Any:
        """A registered loss (``mse``, ``mae``, ``bce_with_logits``, ...), else a ``keras.losses`` class by name."""
        return find_component(
            name,
            registered_components("losses", self.name),
            framework_losses(),
            what="loss",
            backend=self.name,
            strip_suffix="loss",
        )

    def build_loss(self, spec: Any, kwargs: Mapping[str, Any], reduction: str = "none") -> Callable[..., Any]:
        """The loss callable ``loss(outputs, targets, ...)`` of a class or function.

        Keras losses are built with Keras' spelling of ``reduction`` (``"none"`` is ``None``) and
        wrapped in :class:`~modularml_tf.losses.KerasLoss`, which takes the predictions first;
        other classes are instantiated with ``reduction`` where they take one; functions get
        ``kwargs`` bound.

        Raises:
            InvalidTypeError: If ``spec`` is neither a class nor callable.
            InvalidArgumentError: If ``kwargs`` do not fit the loss.
        """
        if not callable(spec):
            raise InvalidTypeError(f"A tensorflow loss is a class or a function; got {spec!r}.")
        options = dict(kwargs)
        keras_style = is_keras_loss(spec)
        if isinstance(spec, type):
            from modularml.backends.common import accepts_keyword

            if "reduction" not in options and accepts_keyword(spec, "reduction"):
                options["reduction"] = keras_reduction(reduction) if keras_style else reduction
            elif keras_style and "reduction" in options:
                options["reduction"] = keras_reduction(options["reduction"])
            try:
                loss = spec(**options)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(f"Cannot construct the loss {spec.__name__} with {options}: {exc}") from exc
        elif options:
            import functools

            loss = functools.partial(spec, **options)
        else:
            loss = spec
        return KerasLoss(loss) if keras_style else loss

    def build_mean_loss(self, spec: Any, kwargs: Mapping[str, Any]) -> Callable[..., Any] | None:
        """A compiled ``tf.function`` giving the mean over every element of ``spec``'s unreduced values, or None.

        For the element-wise losses (:data:`~modularml_tf.losses.ELEMENTWISE_MEAN`: MSE, MAE, Huber,
        log-cosh, smooth L1, BCE, BCE with logits) without a ``reduction`` in ``kwargs``. Traced once
        per input signature (the batch axis is left open).
        """
        if "reduction" in kwargs or spec not in ELEMENTWISE_MEAN:
            return None
        values = self.build_loss(spec, kwargs, "none")

        def mean_loss(outputs: Any, targets: Any) -> tf.Tensor:
            return tf.reduce_mean(values(outputs, targets))

        return tf.function(mean_loss, reduce_retracing=True)

    # -- optimizers -------------------------------------------------------------------------
    def resolve_optimizer(self, name: str) -> Any:
        """A registered optimizer (``sgd``, ``adam``, ``adamw``, ...), else a ``keras.optimizers`` class by name."""
        return find_component(
            name,
            registered_components("optimizers", self.name),
            framework_optimizers(),
            what="optimizer",
            backend=self.name,
        )

    def build_optimizer(self, spec: Any, kwargs: Mapping[str, Any], parameters: Sequence[Any] | None) -> Any:
        """``spec(**kwargs)`` (a ``keras.optimizers`` class, or a factory), built over ``parameters`` when given.

        ``kwargs`` may use torch's spellings (``lr``, ``eps``, ``betas``; see
        :func:`~modularml_tf.optimizers.optimizer_kwargs`). Keras optimizers receive their variables at
        each step, so ``parameters`` may be None; when given, the optimizer's slots are created at once
        (on the variables' device), so that its state can be restored before the first step.

        Raises:
            InvalidTypeError: If ``spec`` is not callable, or does not give a Keras optimizer.
            InvalidArgumentError: If ``kwargs`` do not fit.
        """
        if not callable(spec):
            raise InvalidTypeError(f"A tensorflow optimizer is a keras.optimizers class or a factory; got {spec!r}.")
        options = optimizer_kwargs(spec, kwargs)
        try:
            optimizer = spec(**options)
        except (TypeError, ValueError) as exc:
            name = getattr(spec, "__name__", repr(spec))
            raise InvalidArgumentError(f"Cannot construct the optimizer {name} with {options}: {exc}") from exc
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise InvalidTypeError(
                f"The optimizer factory {spec!r} returned {type(optimizer).__name__}, not a keras.optimizers.Optimizer."
            )
        if parameters is not None:
            variables = list(parameters)
            if variables:
                self._build_optimizer_over(optimizer, variables)
        return optimizer

    @staticmethod
    def _build_optimizer_over(optimizer: keras.optimizers.Optimizer, variables: list[Any]) -> None:
        device = getattr(variables[0], "device", None) or None
        with tf.device(device) if device else contextlib.nullcontext():
            optimizer.build(variables)

    def get_optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """The optimizer's variables (iterations, learning rate, slots) as numpy arrays."""
        return optimizer_state_to_numpy(self._check_optimizer(optimizer))

    def set_optimizer_state(self, optimizer: Any, state: Mapping[str, Any]) -> None:
        """Assign a state from :meth:`get_optimizer_state` to an optimizer built over like-shaped variables."""
        optimizer_state_from_numpy(self._check_optimizer(optimizer), state)

    def optimizer_step(
        self, optimizer: Any, grads: Sequence[Any] | None = None, variables: Sequence[Any] | None = None
    ) -> None:
        """Apply ``grads`` to ``variables`` (pairwise) with ``optimizer``, as one compiled update.

        Raises:
            InvalidArgumentError: If ``grads`` or ``variables`` are missing, or differ in length.
        """
        optimizer = self._check_optimizer(optimizer)
        if grads is None or variables is None:
            raise InvalidArgumentError(
                "TensorFlow optimizers apply given gradients: pass grads and variables to Optimizer.step(grads, "
                "variables) (for example from tape.gradient(loss, variables))."
            )
        grads, variables = list(grads), list(variables)
        if len(grads) != len(variables):
            raise InvalidArgumentError(
                f"Optimizer.step got {len(grads)} gradients for {len(variables)} variables; they are paired one to one."
            )
        self._apply(optimizer, grads, variables)

    @staticmethod
    def _check_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise InvalidTypeError(
                f"Expected a keras.optimizers.Optimizer (from backend.build_optimizer); got {type(optimizer).__name__}."
            )
        return optimizer

    @staticmethod
    def _updates(optimizer: keras.optimizers.Optimizer) -> _CompiledUpdates:
        """The compiled updates kept on the optimizer itself (they go when it goes)."""
        updates = optimizer.__dict__.get("_modularml_updates")
        if updates is None:
            updates = _CompiledUpdates()
            optimizer.__dict__["_modularml_updates"] = updates
        return updates

    def update_trace_count(self, optimizer: Any) -> int:
        """How many times the compiled updates of ``optimizer`` were traced (once per set of variables)."""
        return self._updates(self._check_optimizer(optimizer)).traces

    def _apply(self, optimizer: keras.optimizers.Optimizer, grads: list[Any], variables: list[Any]) -> None:
        """``optimizer.apply`` of the non-None gradients, compiled once per optimizer and tuple of variables."""
        pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
        if not pairs:
            raise InvalidArgumentError("No variable has a gradient; nothing to update.")
        if not optimizer.built:
            self._build_optimizer_over(optimizer, list(variables))
        used = [v for _, v in pairs]
        key = tuple(id(v) for v in used)
        updates = self._updates(optimizer)
        entry = updates.functions.get(key)
        if entry is None:

            def update(gradients: list[Any]) -> None:
                updates.traces += 1  # runs when TensorFlow traces
                optimizer.apply(gradients, used)

            entry = (tf.function(update), used)  # keeps the variables alive as long as the function
            updates.functions[key] = entry
        entry[0]([g for g, _ in pairs])

    # -- whole compiled steps ---------------------------------------------------------------
    def compile_train_step(
        self, key: Hashable, step: Callable[..., Any], optimizer: Any, parameters: Sequence[Any]
    ) -> Callable[..., Any]:
        """One ``tf.function`` for a whole training step: ``step``'s forward and losses, the gradients, the update.

        The optional hook of the trainable protocol that :meth:`ModelNode.train_step
        <modularml.ModelNode.train_step>` uses: ``step(*tensors)`` returns ``(total, loss values,
        outputs)``; the returned callable runs it on a ``tf.GradientTape``, applies the gradients of
        ``total`` for ``parameters`` with ``optimizer`` and returns what ``step`` returned. It is
        compiled once per ``key`` (which holds every Python-level fact ``step`` depends on) and input
        signature, traced without AutoGraph, and kept on the optimizer (it goes when the optimizer goes).

        Raises:
            InvalidTypeError: If ``optimizer`` is not a Keras optimizer.
            InvalidArgumentError: When traced, if ``total`` is not a scalar or no parameter gets a gradient.
        """
        optimizer = self._check_optimizer(optimizer)
        variables = list(parameters)
        steps = optimizer.__dict__.setdefault("_modularml_steps", {})
        full_key = (key, tuple(id(v) for v in variables))
        entry = steps.get(full_key)
        if entry is not None:
            return entry.function
        if not optimizer.built:
            self._build_optimizer_over(optimizer, variables)
        entry = _CompiledStep()

        def run(*tensors: Any) -> Any:
            entry.traces += 1  # runs when TensorFlow traces
            with tf.GradientTape() as tape:
                total, values, outputs = step(*tensors)
            if not isinstance(total, tf.Tensor) or total.shape.num_elements() != 1:
                check_scalar_loss(total, is_scalar=False, requires_grad=False)
            grads = tape.gradient(total, variables)  # one element: its gradient (a reshape here would be unrecorded)
            pairs = [(g, v) for g, v in zip(grads, variables, strict=True) if g is not None]
            if not pairs:
                check_scalar_loss(total, is_scalar=True, requires_grad=False)
            optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
            return total, values, outputs

        entry.function = tf.function(run, autograph=False)
        steps[full_key] = entry
        return entry.function

    def step_trace_count(self, optimizer: Any) -> int:
        """How many times the compiled training steps of ``optimizer`` were traced (once per key and signature)."""
        steps = self._check_optimizer(optimizer).__dict__.get("_modularml_steps", {})
        return sum(entry.traces for entry in steps.values())

    # -- gradients --------------------------------------------------------------------------
    @contextlib.contextmanager
    def gradient_scope(self) -> Iterator[tf.GradientTape]:
        """A ``tf.GradientTape`` recording the operations in the scope (trainable variables are watched)."""
        with tf.GradientTape() as tape:
            yield tape

    def apply_gradients(self, loss: Any, optimizer: Any, parameters: Sequence[Any], scope: Any) -> None:
        """The gradients of ``loss`` for ``parameters`` (from the tape ``scope``), then one compiled optimizer update.

        Raises:
            InvalidArgumentError: If ``loss`` is not a one-element tensor, or recorded no operations
                on ``parameters`` (the parameters are then unchanged).
            InvalidTypeError: If ``scope`` is not the tape of :meth:`gradient_scope`.
        """
        is_scalar = isinstance(loss, tf.Tensor) and loss.shape.num_elements() == 1
        check_scalar_loss(loss, is_scalar=is_scalar, requires_grad=True)
        if not isinstance(scope, tf.GradientTape):
            raise InvalidTypeError(
                f"apply_gradients needs the tf.GradientTape that gradient_scope() yielded; got {type(scope).__name__}."
            )
        optimizer = self._check_optimizer(optimizer)
        params = list(parameters)
        if not params:
            raise InvalidArgumentError("apply_gradients got no variables to train.")
        grads = scope.gradient(loss, params)  # one element, of any rank: the gradient of that element
        if all(g is None for g in grads):
            check_scalar_loss(loss, is_scalar=True, requires_grad=False)
        self._apply(optimizer, grads, params)
