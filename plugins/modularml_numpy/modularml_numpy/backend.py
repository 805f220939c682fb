"""The numpy backend: :class:`~modularml_numpy.autograd.Tensor` as native values, on the CPU, trainable."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends import NumpyTensorOps
from modularml.backends.components import construct_optimizer, find_component, registered_components
from modularml.backends.padding import PadWidth
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.models import BaseModel
from modularml_numpy import autograd
from modularml_numpy.autograd import Tensor, as_tensor

__all__ = ["NumpyBackend"]


def _accepts(fn: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class NumpyBackend(NumpyTensorOps):
    """Backend whose native values are autograd :class:`~modularml_numpy.autograd.Tensor` objects.

    The tensor ops of :class:`~modularml.backends.NumpyTensorOps` (CPU only, seeding), made
    differentiable, plus the whole :class:`~modularml.backends.TrainableBackendProtocol`: the
    :class:`~modularml_numpy.models.LinearModel`, the ``mse`` and ``mae`` losses and the ``sgd``
    and ``adam`` optimizers, all registered through the plugin hooks. :meth:`from_numpy` wraps
    the array without copying it; :meth:`to_numpy` returns the tensor's array.
    """

    name = "numpy"
    trainable = True
    supports_partial_fit = False
    zero_copy_from_numpy = True
    framework_version = np.__version__

    # -- conversion -------------------------------------------------------------------------
    def random_normal(self, shape: Sequence[int], *, dtype: DTypeLike = "float32", device: str | None = None) -> Tensor:
        """Standard normal draws from this backend's generator, as a tensor."""
        return Tensor(super().random_normal(shape, dtype=dtype, device=device))

    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is an autograd ``Tensor`` (numpy arrays are not: they belong to the core)."""
        return isinstance(value, Tensor)

    def from_numpy(self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None) -> Tensor:
        """Wrap ``array`` (cast to ``dtype`` if given) in a tensor that shares its memory; no gradients."""
        self._check_device(device)
        return Tensor(np.asarray(array, dtype=dtype))

    def to_numpy(self, value: Any) -> np.ndarray:
        """The tensor's array (shared); numpy arrays pass through; anything else goes through ``np.asarray``."""
        if isinstance(value, Tensor):
            return value.data
        return np.asarray(value)

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[Any], axis: int = 0) -> Tensor:
        """Join tensors along an existing axis; differentiable."""
        return autograd.concat(values, axis=axis)

    def stack(self, values: Sequence[Any], axis: int = 0) -> Tensor:
        """Join tensors along a new axis; differentiable."""
        return autograd.stack(values, axis=axis)

    def pad(self, value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Tensor:
        """Pad like ``np.pad`` in any number of dimensions; differentiable."""
        return autograd.pad(value, pad_width, mode=mode, constant_value=constant_value)

    def mean(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Arithmetic mean; integer and bool inputs give float64, as numpy does; differentiable."""
        return as_tensor(value).mean(axis=axis, keepdims=keepdims)

    def sum(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over the given axes; differentiable."""
        return as_tensor(value).sum(axis=axis, keepdims=keepdims)

    def reshape(self, value: Any, shape: Sequence[int]) -> Tensor:
        """The same values in a new shape; differentiable."""
        return as_tensor(value).reshape(tuple(shape))

    def detach(self, value: Any) -> Any:
        """The same values (shared), cut from recorded operations."""
        return value.detach() if isinstance(value, Tensor) else value

    def no_grad(self) -> contextlib.AbstractContextManager[None]:
        """A scope whose operations record nothing (nests; restored on errors)."""
        return autograd.no_grad()

    # -- models -----------------------------------------------------------------------------
    def claims_model(self, obj: Any) -> bool:
        """numpy has no model objects of its own to wrap: always ``False``."""
        return False

    def wrap_model(self, obj: Any) -> BaseModel:
        """Return a numpy ``BaseModel`` unchanged; there are no raw numpy models to wrap.

        Raises:
            InvalidTypeError: For anything else.
        """
        if isinstance(obj, BaseModel) and obj.backend == self.name:
            return obj
        raise InvalidTypeError(
            f"The numpy backend has no raw models to wrap; got {type(obj).__name__}. Use one of its models "
            "(modularml_numpy.models.LinearModel) or a BaseModel subclass with backend='numpy'."
        )

    def model_parameters(self, model: BaseModel) -> list[Tensor]:
        """The model's ``parameters()``: tensors that require gradients.

        Raises:
            InvalidTypeError: If ``model`` is not a numpy model with ``parameters()``.
            InvalidArgumentError: If the model is not built yet.
        """
        if not (
            isinstance(model, BaseModel) and model.backend == self.name and callable(getattr(model, "parameters", None))
        ):
            raise InvalidTypeError(
                f"Expected a numpy-backend BaseModel with a parameters() method; got {type(model).__name__}."
            )
        if not model.is_built:
            raise InvalidArgumentError(
                f"{type(model).__name__} is not built yet, so it has no parameters; build it first."
            )
        return list(model.parameters())

    def parameter_from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None
    ) -> Tensor:
        """A new tensor that requires gradients, holding a copy of ``array`` (integers become float32)."""
        self._check_device(device)
        data = np.array(array, dtype=dtype, copy=True)
        if dtype is None and data.dtype.kind not in "fc":
            data = data.astype("float32")
        return Tensor(data, requires_grad=True)

    # -- losses -----------------------------------------------------------------------------
    def resolve_loss(self, name: str) -> Any:
        """A loss registered for the numpy backend (``mse``, ``mae``), matched leniently by name."""
        return find_component(
            name, registered_components("losses", self.name), what="loss", backend=self.name, strip_suffix="loss"
        )

    def build_loss(self, spec: Any, kwargs: Mapping[str, Any], reduction: str = "none") -> Callable[..., Any]:
        """Instantiate a loss class (with ``reduction`` if it takes one), or bind ``kwargs`` to a function.

        Raises:
            InvalidTypeError: If ``spec`` is neither a class nor callable.
            InvalidArgumentError: If ``kwargs`` do not fit the loss.
        """
        if not callable(spec):
            raise InvalidTypeError(f"A numpy loss is a class or a function; got {spec!r}.")
        options = dict(kwargs)
        if "reduction" not in options and _accepts(spec, "reduction"):
            options["reduction"] = reduction
        if not isinstance(spec, type):
            return functools.partial(spec, **options) if options else spec
        try:
            return spec(**options)
        except TypeError as exc:
            raise InvalidArgumentError(f"Cannot construct the loss {spec.__name__} with {options}: {exc}") from exc

    # -- optimizers -------------------------------------------------------------------------
    def resolve_optimizer(self, name: str) -> Any:
        """An optimizer registered for the numpy backend (``sgd``, ``adam``), matched case-insensitively."""
        return find_component(name, registered_components("optimizers", self.name), what="optimizer", backend=self.name)

    def build_optimizer(self, spec: Any, kwargs: Mapping[str, Any], parameters: Sequence[Any] | None) -> Any:
        """``spec(parameters, **kwargs)``, for a class or a factory.

        Raises:
            InvalidArgumentError: If there are no parameters, or ``kwargs`` do not fit.
            InvalidTypeError: If ``spec`` is not callable.
        """
        return construct_optimizer(spec, kwargs, parameters, backend="numpy", errors=(TypeError,))

    def get_optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """The optimizer's ``get_state()``: step count and buffers as numpy arrays."""
        return self._optimizer_method(optimizer, "get_state")()

    def set_optimizer_state(self, optimizer: Any, state: Mapping[str, Any]) -> None:
        """The optimizer's ``set_state(state)``."""
        self._optimizer_method(optimizer, "set_state")(state)

    def optimizer_step(
        self, optimizer: Any, grads: Sequence[Any] | None = None, variables: Sequence[Any] | None = None
    ) -> None:
        """One update from the gradients on the parameters, or from ``grads`` (in parameter order).

        Raises:
            InvalidArgumentError: If ``variables`` are given and are not the optimizer's parameters.
        """
        if variables is not None and grads is not None:
            params = getattr(optimizer, "params", None)
            if params is None or [id(v) for v in variables] != [id(p) for p in params]:
                raise InvalidArgumentError(
                    "numpy optimizers step their own parameters; give grads in that order and leave variables out."
                )
        self._optimizer_method(optimizer, "step")(grads)

    @staticmethod
    def _optimizer_method(optimizer: Any, method: str) -> Callable[..., Any]:
        found = getattr(optimizer, method, None)
        if not callable(found):
            raise InvalidTypeError(
                f"{type(optimizer).__name__} is not a numpy optimizer: it has no {method}() method. Subclass "
                "modularml_numpy.optimizers.NumpyOptimizer."
            )
        return found

    # -- gradients --------------------------------------------------------------------------
    @contextlib.contextmanager
    def gradient_scope(self) -> Iterator[None]:
        """A scope in which operations are recorded (even inside ``no_grad``); yields ``None``."""
        with autograd.enable_grad():
            yield None

    def apply_gradients(self, loss: Any, optimizer: Any, parameters: Sequence[Any], scope: Any) -> None:
        """Clear the parameters' gradients, backpropagate ``loss``, and step ``optimizer`` once.

        Raises:
            InvalidArgumentError: If ``loss`` is not a one-element tensor, or recorded no operations
                (the parameters are then unchanged).
        """
        if not isinstance(loss, Tensor) or loss.size != 1:
            shape = getattr(loss, "shape", None)
            raise InvalidArgumentError(
                f"apply_gradients needs the loss as a one-element tensor; got {type(loss).__name__} of shape {shape}. "
                "Reduce it first with backend.mean() or backend.sum()."
            )
        if not loss.requires_grad:
            raise InvalidArgumentError(
                "The loss recorded no operations, so there is nothing to backpropagate: compute it inside "
                "gradient_scope() and outside no_grad(), from parameters that require gradients."
            )
        for p in parameters:
            p.grad = None
        loss.backward()
        self._optimizer_method(optimizer, "step")()
