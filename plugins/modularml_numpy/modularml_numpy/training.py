"""The trainable half of the numpy backend: models, losses, optimizers and gradient steps.

:class:`NumpyTraining` implements what :class:`~modularml.backends.TrainableBackendProtocol` adds
to the tensor ops; :class:`~modularml_numpy.backend.NumpyBackend` inherits it. The components it
finds by name are those the plugin registers: the losses of :mod:`modularml_numpy.losses` and the
optimizers of :mod:`modularml_numpy.optimizers`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends.common import check_scalar_loss, construct_loss
from modularml.backends.components import construct_optimizer, find_component, registered_components
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.models import BaseModel, check_model_of
from modularml_numpy import autograd
from modularml_numpy.autograd import Tensor

__all__ = ["NumpyTraining"]


class NumpyTraining:
    """The :class:`~modularml.backends.TrainableBackendProtocol` methods of the numpy backend.

    A mixin of :class:`~modularml_numpy.backend.NumpyBackend`, whose ``name`` and ``_check_device``
    (from :class:`~modularml.backends.NumpyTensorOps`) it uses.
    """

    name: str

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
        check_model_of(model, self.name, expected="a numpy-backend BaseModel with a parameters() method")
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
        return construct_loss(spec, kwargs, reduction, backend=self.name)

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
        is_scalar = isinstance(loss, Tensor) and loss.size == 1
        check_scalar_loss(loss, is_scalar=is_scalar, requires_grad=is_scalar and loss.requires_grad)
        for p in parameters:
            p.grad = None
        loss.backward()
        self._optimizer_method(optimizer, "step")()
