"""The PyTorch backend: ``torch.Tensor`` as native values, on the CPU, CUDA devices or MPS."""

from __future__ import annotations

import contextlib
import functools
import inspect
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import DTypeLike

from modularml.backends import normalize_device, normalize_pad_width, pad_index_map
from modularml.backends.components import construct_optimizer, find_component, registered_components
from modularml.backends.padding import PadWidth, check_pad_mode
from modularml.errors import DeviceError, InvalidArgumentError, InvalidTypeError
from modularml.models import BaseModel
from modularml_torch.losses import framework_losses
from modularml_torch.optimizers import framework_optimizers, optimizer_state_from_numpy, optimizer_state_to_numpy

__all__ = ["TorchBackend"]

#: torch floating dtypes numpy has no equivalent for; :meth:`TorchBackend.to_numpy` gives float32.
_NUMPY_LESS_FLOATS = frozenset(
    getattr(torch, name)
    for name in ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu")
    if hasattr(torch, name)
)


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


def _accepts(fn: Callable, name: str) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _torch_dtype(dtype: DTypeLike | torch.dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype, a dtype name or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype


class TorchBackend:
    """Backend for PyTorch.

    Native values are ``torch.Tensor``. Models learn by gradient steps (``trainable``), not by
    ``partial_fit``; :meth:`from_numpy` shares memory with contiguous, writeable CPU arrays.
    The whole :class:`~modularml.backends.TrainableBackendProtocol` is implemented: ``nn.Module``
    objects are wrapped in :class:`~modularml_torch.models.TorchModelWrapper`, losses and
    optimizers are found among the registered short names and then ``torch.nn``/``torch.optim``.
    """

    name = "torch"
    trainable = True
    supports_partial_fit = False
    zero_copy_from_numpy = True
    framework_version = torch.__version__

    # -- devices and randomness ---------------------------------------------------------
    def available_devices(self) -> list[str]:
        """``"cpu"``, then ``"cuda:<i>"`` for each visible CUDA device, then ``"mps"`` if available."""
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices.extend(f"cuda:{i}" for i in range(torch.cuda.device_count()))
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            devices.append("mps")
        return devices

    def _check_device(self, device: str | None) -> str:
        """The canonical name of ``device``; raise :class:`DeviceError` if it is not available here."""
        canonical = normalize_device(device)
        if canonical == "cpu":
            return canonical
        available = self.available_devices()
        if canonical not in available:
            given = "" if canonical == device else f" (given as {device!r})"
            raise DeviceError(
                f"Device {canonical!r}{given} is not available to the {self.name!r} backend; "
                f"available devices: {available}."
            )
        return canonical

    def device_of(self, value: Any) -> str:
        """Canonical device name of a tensor (``"cpu"``, ``"cuda:<i>"``, ``"mps"``); numpy arrays are ``"cpu"``."""
        if not isinstance(value, torch.Tensor):
            return "cpu"
        device = value.device
        if device.type == "cuda":
            return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
        if device.type in ("cpu", "mps"):
            return device.type
        return str(device)

    def seed(self, seed: int) -> None:
        """Seed torch's generators on every device (``torch.manual_seed``, ``torch.cuda.manual_seed_all``)."""
        torch.manual_seed(seed)
        torch.cuda.manual_seed_all(seed)

    def random_normal(
        self, shape: Sequence[int], *, dtype: DTypeLike | torch.dtype = "float32", device: str | None = None
    ) -> torch.Tensor:
        """Standard normal draws from torch's generator of ``device``.

        A non-floating ``dtype`` draws float32 values and casts them, as numpy's ``astype`` does.
        """
        target = self._check_device(device)
        torch_dtype = _torch_dtype(dtype)
        if torch_dtype.is_floating_point or torch_dtype.is_complex:
            return torch.randn(tuple(shape), dtype=torch_dtype, device=target)
        return torch.randn(tuple(shape), dtype=torch.float32, device=target).to(torch_dtype)

    # -- conversion -------------------------------------------------------------------------
    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is a ``torch.Tensor`` (parameters included)."""
        return isinstance(value, torch.Tensor)

    def from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | torch.dtype | None = None, device: str | None = None
    ) -> torch.Tensor:
        """Convert a numpy array to a tensor on ``device``.

        On the CPU, a C-contiguous, writeable array in native byte order is shared, not copied:
        writes to one show in the other. Other arrays (views with strides, read-only arrays) are
        copied first. ``dtype`` may also be a torch dtype (``torch.bfloat16``); it is then applied
        after the conversion.

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        target = self._check_device(device)
        torch_dtype = dtype if isinstance(dtype, torch.dtype) else None
        array = np.asarray(array, dtype=None if torch_dtype is not None else dtype)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not (array.flags.c_contiguous and array.flags.writeable):
            array = np.array(array, order="C", copy=True)
        tensor = torch.from_numpy(array)
        if torch_dtype is not None or target != "cpu":
            tensor = tensor.to(device=target, dtype=torch_dtype)
        return tensor

    def to_numpy(self, value: Any) -> np.ndarray:
        """Convert a tensor to numpy: detached, on the CPU; numpy arrays pass through unchanged.

        CPU tensors share memory with the result. Floating dtypes numpy lacks (``bfloat16``,
        the ``float8`` types) become float32.
        """
        if isinstance(value, np.ndarray):
            return value
        if not isinstance(value, torch.Tensor):
            return np.asarray(value)
        tensor = value.detach()
        if tensor.dtype in _NUMPY_LESS_FLOATS:
            tensor = tensor.to(torch.float32)
        return tensor.numpy(force=True)

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[torch.Tensor], axis: int = 0) -> torch.Tensor:
        """Join tensors along an existing axis (``torch.cat``)."""
        values = list(values)
        if not values:
            raise ValueError("concat needs at least one tensor.")
        return torch.cat(values, dim=axis)

    def stack(self, values: Sequence[torch.Tensor], axis: int = 0) -> torch.Tensor:
        """Join tensors along a new axis (``torch.stack``)."""
        values = list(values)
        if not values:
            raise ValueError("stack needs at least one tensor.")
        return torch.stack(values, dim=axis)

    def pad(
        self, value: torch.Tensor, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0
    ) -> torch.Tensor:
        """Pad a tensor like ``np.pad``, in any number of dimensions; differentiable.

        ``"constant"`` uses ``torch.nn.functional.pad``; the other modes gather along each padded
        axis with the index maps of :func:`~modularml.backends.pad_index_map`, so any pad width
        works (circular padding wider than the axis included).

        Raises:
            ValueError: For an unknown mode, bad widths, or a non-constant mode on an empty axis.
        """
        check_pad_mode(mode)
        widths = normalize_pad_width(pad_width, value.ndim)
        if mode == "constant":
            # F.pad takes (before, after) pairs starting from the last axis.
            flat = [width for pair in reversed(widths) for width in pair]
            return F.pad(value, flat, mode="constant", value=constant_value)
        result = value
        for axis, (before, after) in enumerate(widths):
            if not (before or after):
                continue
            size = result.shape[axis]
            if size == 0:
                raise ValueError(f"Cannot pad empty axis {axis} in {mode!r} mode: there is nothing to copy from.")
            index = torch.from_numpy(pad_index_map(size, before, after, mode)).to(result.device)
            result = result.index_select(axis, index)
        return result.clone() if result is value else result

    def mean(
        self, value: torch.Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> torch.Tensor:
        """Arithmetic mean over the given axes (all axes when ``None``).

        Integer and bool tensors are averaged in torch's default float dtype (float32 unless
        changed), not in float64 as numpy does: float64 is slow on GPUs and missing on MPS.
        """
        dtype = None if (value.is_floating_point() or value.is_complex()) else torch.get_default_dtype()
        if axis is None:
            result = torch.mean(value, dtype=dtype)
            return result.reshape((1,) * value.ndim) if keepdims else result
        dims = tuple(operator.index(a) for a in axis) if isinstance(axis, Sequence) else (operator.index(axis),)
        if not dims:  # torch reduces every axis for dim=(); numpy reduces none
            return value.to(dtype) if dtype is not None else value.clone()
        return torch.mean(value, dim=dims, keepdim=keepdims, dtype=dtype)

    def sum(self, value: torch.Tensor, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> torch.Tensor:
        """Sum over the given axes (all axes when ``None``), like ``np.sum`` (``torch.sum``)."""
        if axis is None:
            result = torch.sum(value)
            return result.reshape((1,) * value.ndim) if keepdims else result
        dims = tuple(operator.index(a) for a in axis) if isinstance(axis, Sequence) else (operator.index(axis),)
        if not dims:  # torch reduces every axis for dim=(); numpy reduces none
            return value.clone()
        return torch.sum(value, dim=dims, keepdim=keepdims)

    def reshape(self, value: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """The same values in a new shape (``Tensor.reshape``; a view where possible)."""
        return value.reshape(tuple(shape))  # torch takes ints and anything with __index__, refuses floats

    def detach(self, value: torch.Tensor) -> torch.Tensor:
        """The same values, sharing memory, with no link to the autograd graph."""
        return value.detach() if isinstance(value, torch.Tensor) else value

    def no_grad(self) -> AbstractContextManager[Any]:
        """A ``torch.no_grad()`` scope: tensors computed in it do not require gradients."""
        return torch.no_grad()

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
        if not (
            isinstance(model, BaseModel) and model.backend == self.name and callable(getattr(model, "parameters", None))
        ):
            raise InvalidTypeError(
                f"Expected a torch-backend BaseModel (an nn.Module); got {type(model).__name__}. Wrap raw modules "
                "with backend.wrap_model()."
            )
        if not model.is_built:
            raise InvalidArgumentError(
                f"{type(model).__name__} is not built yet, so it has no parameters; build it first."
            )
        return [p for p in model.parameters() if p.requires_grad]

    def parameter_from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | torch.dtype | None = None, device: str | None = None
    ) -> torch.nn.Parameter:
        """A new ``nn.Parameter`` holding a copy of ``array`` (integer and bool arrays become float32)."""
        target = self._check_device(device)
        data = np.array(array, copy=True)
        torch_dtype = _torch_dtype(dtype) if dtype is not None else None
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
        if not callable(spec):
            raise InvalidTypeError(f"A torch loss is a class or a function; got {spec!r}.")
        options = dict(kwargs)
        if "reduction" not in options and _accepts(spec, "reduction"):
            options["reduction"] = reduction
        if not isinstance(spec, type):
            return functools.partial(spec, **options) if options else spec
        try:
            return spec(**options)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"Cannot construct the loss {spec.__name__} with {options}: {exc}") from exc

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
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(getattr(loss, "shape", ())) if hasattr(loss, "shape") else None
            raise InvalidArgumentError(
                f"apply_gradients needs the loss as a one-element (scalar) tensor; got {type(loss).__name__} of shape "
                f"{shape}. Reduce it first with backend.mean() or backend.sum()."
            )
        if not loss.requires_grad:
            raise InvalidArgumentError(
                "The loss recorded no operations, so there is nothing to backpropagate: compute it inside "
                "gradient_scope() and outside no_grad(), from parameters that require gradients."
            )
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
