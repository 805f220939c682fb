"""The trainable half of the PyTorch backend: models, losses, optimizers and gradient steps.

:class:`TorchTraining` implements what :class:`~modularml.backends.TrainableBackendProtocol` adds
to the tensor ops; :class:`~modularml_torch.backend.TorchBackend` inherits it. Losses and
optimizers are the registered short names (:mod:`modularml_torch.plugin`), then every class of
``torch.nn`` and ``torch.optim`` by name (:mod:`modularml_torch.losses`,
:mod:`modularml_torch.optimizers`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import DTypeLike

from modularml.backends.common import check_scalar_loss, construct_loss
from modularml.backends.components import construct_optimizer, find_component, registered_components
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.models import BaseModel, check_model_of
from modularml_torch.losses import framework_losses
from modularml_torch.optimizers import framework_optimizers, optimizer_state_from_numpy, optimizer_state_to_numpy

__all__ = ["TorchTraining", "as_torch_dtype"]

#: Losses whose ``reduction="mean"`` is the mean over every element of their ``reduction="none"`` values.
_ELEMENTWISE_MEAN = frozenset(
    {
        torch.nn.MSELoss,
        torch.nn.L1Loss,
        torch.nn.HuberLoss,
        torch.nn.SmoothL1Loss,
        torch.nn.BCELoss,
        torch.nn.BCEWithLogitsLoss,
        torch.nn.SoftMarginLoss,
        F.mse_loss,
        F.l1_loss,
        F.huber_loss,
        F.smooth_l1_loss,
        F.binary_cross_entropy,
        F.binary_cross_entropy_with_logits,
        F.soft_margin_loss,
    }
)


_BASE_ZERO_GRAD = torch.optim.Optimizer.zero_grad

#: ``torch.optim`` classes whose ``foreach=True`` results equal their per-parameter loop's bit for bit
#: (checked by the tests; NAdam, RAdam and ASGD differ in the last bits and keep torch's choice).
_FOREACH_SAME_RESULT = frozenset(
    {
        torch.optim.Adam,
        torch.optim.AdamW,
        torch.optim.SGD,
        torch.optim.RMSprop,
        torch.optim.Adagrad,
        torch.optim.Adamax,
        torch.optim.Adadelta,
        torch.optim.Rprop,
    }
)


def as_torch_dtype(dtype: DTypeLike | torch.dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype, a dtype name or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype


class TorchTraining:
    """The :class:`~modularml.backends.TrainableBackendProtocol` methods of the PyTorch backend.

    A mixin of :class:`~modularml_torch.backend.TorchBackend`, whose ``name`` and ``_check_device``
    it uses.
    """

    name: str

    # -- models -----------------------------------------------------------------------------
    def claims_model(self, obj: Any) -> bool:
        """Whether ``obj`` is a raw ``torch.nn.Module`` (not already a ``BaseModel``); imports nothing."""
        torch_module = sys.modules.get("torch")
        if torch_module is None or isinstance(obj, BaseModel):
            return False
        return isinstance(obj, torch_module.nn.Module)

    def wrap_model(self, obj: Any) -> BaseModel:
        """Wrap an ``nn.Module`` in a :class:`~modularml_torch.models.TorchModelWrapper`; torch models pass through.

        Raises:
            InvalidTypeError: If ``obj`` is neither an ``nn.Module`` nor a torch ``BaseModel``.
        """
        if isinstance(obj, BaseModel):
            if obj.backend == self.name:
                return obj
            raise InvalidTypeError(f"{type(obj).__name__} is a {str(obj.backend)!r} model, not a torch model.")
        if isinstance(obj, torch.nn.Module):
            from modularml_torch.models import TorchModelWrapper

            return TorchModelWrapper(obj)
        raise InvalidTypeError(
            f"The torch backend wraps torch.nn.Module objects; got {type(obj).__name__}. Pass an nn.Module, or "
            "use TorchModelWrapper(model_class=..., model_kwargs=...)."
        )

    def model_parameters(self, model: BaseModel) -> list[torch.Tensor]:
        """The parameters of a built torch model that require gradients (frozen ones are left out).

        Raises:
            InvalidTypeError: If ``model`` is not a torch ``BaseModel`` with ``parameters()``.
            InvalidArgumentError: If the model is not built yet.
        """
        check_model_of(
            model,
            self.name,
            expected="a torch-backend BaseModel (an nn.Module; wrap raw modules with backend.wrap_model())",
        )
        return [p for p in model.parameters() if p.requires_grad]

    def parameter_from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | torch.dtype | None = None, device: str | None = None
    ) -> torch.nn.Parameter:
        """A new ``nn.Parameter`` holding a copy of ``array`` (integer and bool arrays become float32)."""
        target = self._check_device(device)
        data = np.array(array, copy=True)
        torch_dtype = as_torch_dtype(dtype) if dtype is not None else None
        if torch_dtype is None and data.dtype.kind not in "fc":
            torch_dtype = torch.float32
        tensor = torch.from_numpy(np.ascontiguousarray(data)).to(device=target, dtype=torch_dtype)
        return torch.nn.Parameter(tensor)

    # -- losses -----------------------------------------------------------------------------
    def resolve_loss(self, name: str) -> Any:
        """A registered loss (``mse``, ``mae``, ``bce_with_logits``, ...), else a ``torch.nn`` loss class by name."""
        return find_component(
            name,
            registered_components("losses", self.name),
            framework_losses(),
            what="loss",
            backend=self.name,
            strip_suffix="loss",
        )

    def build_loss(self, spec: Any, kwargs: Mapping[str, Any], reduction: str = "none") -> Callable[..., Any]:
        """Instantiate a loss class (with ``reduction`` where it takes one), or bind ``kwargs`` to a function.

        With ``reduction="none"`` the ``torch.nn`` losses return per-element (or per-sample) values,
        batch axis first.

        Raises:
            InvalidTypeError: If ``spec`` is neither a class nor callable.
            InvalidArgumentError: If ``kwargs`` do not fit the loss.
        """
        return construct_loss(spec, kwargs, reduction, backend=self.name, errors=(TypeError, ValueError))

    def build_mean_loss(self, spec: Any, kwargs: Mapping[str, Any]) -> Callable[..., Any] | None:
        """``spec`` with ``reduction="mean"`` where that is the mean of every element of its ``"none"`` values.

        True of the element-wise losses (:data:`_ELEMENTWISE_MEAN`: MSE, L1, Huber, smooth L1, BCE,
        BCE with logits, soft margin), whatever their other arguments; not of, e.g., cross entropy
        with class weights (its mean divides by the summed weights). None for every other loss, or
        when ``kwargs`` set a reduction themselves.
        """
        if "reduction" in kwargs or spec not in _ELEMENTWISE_MEAN:
            return None
        return self.build_loss(spec, kwargs, "mean")

    # -- optimizers -------------------------------------------------------------------------
    def resolve_optimizer(self, name: str) -> Any:
        """A registered optimizer (``sgd``, ``adam``, ``adamw``, ...), else a ``torch.optim`` class by name."""
        return find_component(
            name,
            registered_components("optimizers", self.name),
            framework_optimizers(),
            what="optimizer",
            backend=self.name,
        )

    def build_optimizer(self, spec: Any, kwargs: Mapping[str, Any], parameters: Sequence[Any] | None) -> Any:
        """``spec(parameters, **kwargs)``, for a ``torch.optim`` class or a factory.

        Decision: for parameters on the CPU, the ``torch.optim`` classes whose multi-tensor (``foreach``)
        implementation computes bit for bit what their per-parameter loop computes (:data:`_FOREACH_SAME_RESULT`:
        Adam, AdamW, SGD, RMSprop, Adagrad, Adamax, Adadelta, Rprop) are built with ``foreach=True`` unless
        ``kwargs`` choose (``foreach`` or ``fused``). torch picks that implementation by default only on
        CUDA; on the CPU it saves one dispatch per parameter and operation (about 10% of a step of a small
        MLP), and the results do not change.

        Raises:
            InvalidArgumentError: If there are no parameters, or ``kwargs`` do not fit.
            InvalidTypeError: If ``spec`` is not callable.
        """
        options = dict(kwargs)
        if (
            spec in _FOREACH_SAME_RESULT
            and "foreach" not in options
            and not options.get("fused")
            and parameters is not None
        ):
            params = list(parameters)
            if params and all(isinstance(p, torch.Tensor) and p.device.type == "cpu" for p in params):
                options["foreach"] = True
            parameters = params
        return construct_optimizer(spec, options, parameters, backend="torch")

    def get_optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """``optimizer.state_dict()`` with every tensor as a numpy array; see :mod:`modularml_torch.optimizers`."""
        return optimizer_state_to_numpy(self._check_optimizer(optimizer))

    def set_optimizer_state(self, optimizer: Any, state: Mapping[str, Any]) -> None:
        """Load a state from :meth:`get_optimizer_state` (tensors go to the parameters' devices)."""
        optimizer_state_from_numpy(self._check_optimizer(optimizer), state)

    def optimizer_step(
        self, optimizer: Any, grads: Sequence[Any] | None = None, variables: Sequence[Any] | None = None
    ) -> None:
        """``optimizer.step()`` from the gradients stored on the parameters (``grads`` is ignored)."""
        self._check_optimizer(optimizer).step()

    @staticmethod
    def _check_optimizer(optimizer: Any) -> torch.optim.Optimizer:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InvalidTypeError(
                f"Expected a torch.optim.Optimizer (from backend.build_optimizer); got {type(optimizer).__name__}."
            )
        return optimizer

    # -- gradients --------------------------------------------------------------------------
    def gradient_scope(self) -> contextlib.AbstractContextManager[None]:
        """A ``torch.enable_grad()`` scope (recording even inside ``no_grad``); yields ``None``."""
        return torch.enable_grad()

    def apply_gradients(self, loss: Any, optimizer: Any, parameters: Sequence[Any], scope: Any) -> None:
        """Clear the parameters' gradients, backpropagate ``loss`` into ``parameters`` only, and step once.

        Gradients are computed for ``parameters`` alone (``backward(inputs=...)``), so a node-wise step
        leaves the gradients of other nodes' parameters, and their part of the autograd graph, alone.

        Raises:
            InvalidArgumentError: If ``loss`` is not a one-element tensor, or recorded no operations
                (the parameters are then unchanged).
        """
        is_scalar = isinstance(loss, torch.Tensor) and loss.numel() == 1
        check_scalar_loss(loss, is_scalar=is_scalar, requires_grad=is_scalar and loss.requires_grad)
        optimizer = self._check_optimizer(optimizer)
        params = [p for p in parameters if p.requires_grad]
        if not params:
            raise InvalidArgumentError("apply_gradients got no parameters that require gradients; nothing to train.")
        if type(optimizer).zero_grad is _BASE_ZERO_GRAD:
            # What the base class's zero_grad(set_to_none=True) does, without its profiler record per call.
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None
        else:
            optimizer.zero_grad(set_to_none=True)
        for p in params:
            p.grad = None
        (loss if loss.ndim == 0 else loss.reshape(())).backward(inputs=params)
        optimizer.step()
