"""The backend protocol: everything the core asks of an ML framework.

The core never inspects a tensor's type itself; it calls the backend that owns the value.
A backend is one object, created lazily by the loader its plugin registered (see
:func:`modularml.plugins.hookspecs.register_backends`). Run
:class:`modularml.testing.BackendConformance` against a new backend to check it.

Conventions every implementation follows:

- ``dtype`` arguments accept numpy dtypes or their names (``"float32"``); ``None`` keeps the
  input's dtype.
- ``device`` arguments accept the strings of :mod:`modularml.backends.devices`; ``None`` means
  the backend's default device. An unavailable device raises :class:`~modularml.errors.DeviceError`.
- ``axis`` arguments follow numpy, negative values included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends.padding import PadWidth

__all__ = ["BackendProtocol", "ModelProtocol", "TrainableBackendProtocol"]


class ModelProtocol(Protocol):
    """A :class:`~modularml.BaseModel` as the backend protocol names it.

    ``BaseModel`` lives in the models layer, above the backends; this structural type names what
    the protocol relies on without importing upward. Every ``BaseModel`` satisfies it.
    """

    @property
    def backend(self) -> str:
        """The backend powering the model (a :class:`~modularml.Backend`, a ``str``)."""
        ...

    @property
    def is_built(self) -> bool:
        """Whether the model has been built and its shapes resolved."""
        ...

    def forward(self, x: Any, **kwargs: Any) -> Any:
        """Run the model on a batch of native tensors (batch axis first)."""
        ...


@runtime_checkable
class BackendProtocol(Protocol):
    """What a backend implements. Capability flags let the core ask instead of special-casing.

    Attributes:
        name: Canonical backend name, as registered (``"torch"``).
        trainable: Whether models of this backend learn by gradient steps.
        supports_partial_fit: Whether models of this backend can be fitted incrementally.
        zero_copy_from_numpy: Whether :meth:`from_numpy` shares memory with a contiguous
            CPU array of a supported dtype.
    """

    name: str
    trainable: bool
    supports_partial_fit: bool
    zero_copy_from_numpy: bool

    # -- devices and randomness ---------------------------------------------------------
    def available_devices(self) -> list[str]:
        """Canonical names of the devices this backend can use here, ``"cpu"`` first."""
        ...

    def device_of(self, value: Any) -> str:
        """Canonical device name of a native value."""
        ...

    def to_device(self, value: Any, device: str, *, pin_memory: bool = False) -> Any:
        """A native tensor on ``device`` (the same object when it is there already).

        With ``pin_memory``, a CPU tensor going to a CUDA device is staged in page-locked memory
        and copied asynchronously, where the framework supports it (ignored elsewhere). Batches
        are moved through this once per step (:class:`~modularml.Accelerator`).

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        ...

    def model_device(self, model: ModelProtocol) -> str:
        """Canonical device a model of this backend computes on (where its parameters are or will be created)."""
        ...

    def place_model(self, model: ModelProtocol, device: str) -> None:
        """Put a model of this backend on ``device``; layers built later are created there.

        Raises:
            DeviceError: If ``device`` is unknown or not available here (the model is then left
                where it was).
        """
        ...

    def seed(self, seed: int) -> None:
        """Seed the framework's random number generators (all devices)."""
        ...

    def get_rng_state(self) -> dict[str, Any]:
        """The state of every random number generator of the framework (all devices), as plain data.

        JSON values and numpy arrays only, so that a checkpoint can hold it; :meth:`set_rng_state`
        puts it back, after which the framework draws exactly what it would have drawn (dropout
        masks included). Resuming a run from a checkpoint relies on it.
        """
        ...

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore the generators from :meth:`get_rng_state` output.

        Raises:
            InvalidArgumentError: If ``state`` is not what :meth:`get_rng_state` returns here
                (another framework's, or saved with devices this machine lacks).
        """
        ...

    def random_normal(self, shape: Sequence[int], *, dtype: DTypeLike = "float32", device: str | None = None) -> Any:
        """Draw a native tensor of standard normal values from the framework's generator."""
        ...

    # -- conversion -------------------------------------------------------------------------
    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is one of this backend's tensors. Must never import a framework."""
        ...

    def from_numpy(self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None) -> Any:
        """Convert a numpy array to a native tensor, without a copy where the framework allows.

        Non-contiguous or read-only arrays are copied first.
        """
        ...

    def to_numpy(self, value: Any) -> np.ndarray:
        """Convert a native tensor (or a numpy array) to numpy, detached and on the CPU."""
        ...

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[Any], axis: int = 0) -> Any:
        """Join native tensors along an existing axis."""
        ...

    def stack(self, values: Sequence[Any], axis: int = 0) -> Any:
        """Join native tensors along a new axis."""
        ...

    def pad(self, value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Any:
        """Pad a native tensor like ``np.pad``.

        ``mode`` is ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"`` (numpy's
        ``constant``, ``reflect``, ``edge`` and ``wrap``), in any number of dimensions.
        """
        ...

    def mean(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        """Arithmetic mean over the given axes (all axes when ``None``).

        Integer and bool inputs give a floating result, in the backend's default float precision.
        """
        ...

    def sum(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        """Sum over the given axes (all axes when ``None``), like ``np.sum``; differentiable.

        Floating inputs keep their dtype.
        """
        ...

    def reshape(self, value: Any, shape: Sequence[int]) -> Any:
        """The same values in a new shape (one axis may be ``-1``), like ``np.reshape``; differentiable."""
        ...

    def detach(self, value: Any) -> Any:
        """The same values with no link to the autograd graph."""
        ...

    def no_grad(self) -> AbstractContextManager[Any]:
        """A context in which operations record no gradients."""
        ...


@runtime_checkable
class TrainableBackendProtocol(BackendProtocol, Protocol):
    """What a backend whose models learn by gradient steps (``trainable = True``) adds.

    Everything the core's :class:`~modularml.BaseModel`, :class:`~modularml.Loss` and
    :class:`~modularml.Optimizer` wrappers (and the model graph) need from a framework goes
    through these methods. Run :class:`modularml.testing.TrainableBackendConformance` to check
    an implementation.

    Native tensors of a trainable backend also support Python arithmetic: ``+``, ``-``, ``*``,
    ``/`` and ``@`` between two native tensors (with broadcasting) and ``+ - * /`` with Python
    scalars on either side, plus unary ``-``; the results are native tensors that gradients
    flow through. Together with :meth:`sum`, :meth:`mean` and :meth:`reshape` this is all the
    arithmetic the core performs on native values (weighting and averaging losses).

    One training step, as the core runs it::

        with backend.gradient_scope() as scope:
            loss = backend.mean(loss_fn(model_forward(x), y))
        backend.apply_gradients(loss, optimizer, parameters, scope)

    Optional: ``build_mean_loss(spec, kwargs) -> Callable | None``, a callable that returns, in
    one fused operation, the mean over every element of what ``build_loss(spec, kwargs, "none")``
    returns (``torch.nn.MSELoss(reduction="mean")`` for ``MSELoss``), or None for a loss where the
    backend knows no such form. :class:`~modularml.AppliedLoss` uses it for batches whose weights
    are all 1; without it, it takes the mean of the unreduced values.

    Optional: ``compile_train_step(key, step, optimizer, parameters) -> Callable``, for backends
    whose steps run faster as one compiled function (TensorFlow's ``tf.function``). ``step(*tensors)``
    computes, from native tensors only, ``(total_loss, loss_values, outputs)``; the callable returned
    runs it recording gradients, steps ``optimizer`` with the gradients of ``total_loss`` for
    ``parameters`` and returns what ``step`` returned. It is built once per hashable ``key``, which
    holds every Python-level fact ``step`` depends on. :meth:`~modularml.ModelNode.train_step` and the
    graph's global-optimizer step (chains of model nodes of the backend) use it for plain batches (no
    weights, no masks) whose losses read the nodes' outputs and targets; without it, steps run
    through :meth:`gradient_scope` and :meth:`apply_gradients`.
    """

    # -- models ------------------------------------------------------------------------------
    def claims_model(self, obj: Any) -> bool:
        """Whether ``obj`` is a raw framework model this backend can wrap (an ``nn.Module``).

        Called for every installed backend when a user hands a raw model to the core, so it must
        not import anything: compare against the framework only if its module is already in
        ``sys.modules``. Returns ``False`` for :class:`~modularml.BaseModel` instances and for
        anything else it does not know.
        """
        ...

    def wrap_model(self, obj: Any) -> ModelProtocol:
        """Wrap a raw framework model (one that :meth:`claims_model` accepts) into a ``BaseModel``.

        A ``BaseModel`` of this backend is returned unchanged.

        Raises:
            InvalidTypeError: If ``obj`` is not a model of this backend.
        """
        ...

    def model_parameters(self, model: ModelProtocol) -> list[Any]:
        """The trainable parameters of a built ``BaseModel`` of this backend, as native tensors.

        These are what :meth:`build_optimizer` and :meth:`apply_gradients` receive.

        Raises:
            InvalidTypeError: If ``model`` is not a model of this backend.
        """
        ...

    def parameter_from_numpy(
        self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None
    ) -> Any:
        """A new trainable native tensor (torch: ``nn.Parameter``; TF: ``tf.Variable``) holding a copy of ``array``."""
        ...

    # -- losses ---------------------------------------------------------------------------------
    def resolve_loss(self, name: str) -> Any:
        """Find a loss by name: a class or a callable that :meth:`build_loss` accepts.

        Looks in the plugin registry's losses for this backend first (``register_losses``), then
        among the framework's own loss classes. Matching ignores case, underscores and a trailing
        ``"loss"`` (``"mse"``, ``"MSE"``, ``"MSELoss"`` and ``"mse_loss"`` are one name); see
        :func:`modularml.backends.components.find_component`.

        Raises:
            NotRegisteredError: If nothing matches; the message lists the available names.
        """
        ...

    def build_loss(self, spec: Any, kwargs: Mapping[str, Any], reduction: str = "none") -> Callable[..., Any]:
        """Construct the loss callable from ``spec`` (a class or callable of this backend).

        Args:
            spec: What :meth:`resolve_loss` returned, or a user's loss class or function.
            kwargs: Keyword arguments for the loss's constructor (or bound to the function).
            reduction: ``"none"`` (default), ``"mean"`` or ``"sum"``, passed to the loss where it
                takes one.

        Returns:
            A callable ``loss(outputs, targets, ...)`` on native tensors. With
            ``reduction="none"`` it returns unreduced values with the batch axis first (per sample
            or per element); the caller averages over the non-batch axes.
        """
        ...

    # -- optimizers -----------------------------------------------------------------------------
    def resolve_optimizer(self, name: str) -> Any:
        """Find an optimizer by name (case-insensitive): a class or factory :meth:`build_optimizer` accepts.

        Looks in the plugin registry's optimizers for this backend first, then among the
        framework's own optimizer classes.

        Raises:
            NotRegisteredError: If nothing matches; the message lists the available names.
        """
        ...

    def build_optimizer(self, spec: Any, kwargs: Mapping[str, Any], parameters: Sequence[Any] | None) -> Any:
        """Construct a native optimizer over ``parameters``.

        Args:
            spec: What :meth:`resolve_optimizer` returned, a user's optimizer class, or a factory
                (a non-class callable; torch-like backends call ``factory(parameters, **kwargs)``,
                others ``factory(**kwargs)``).
            kwargs: Keyword arguments (``lr``, ``momentum``, ...).
            parameters: Native parameters to optimize (from :meth:`model_parameters`); backends
                whose optimizers receive variables at each step may accept ``None``.

        Returns:
            The native optimizer.

        Raises:
            InvalidArgumentError: If ``parameters`` are needed and missing, or ``kwargs`` do not fit.
        """
        ...

    def get_optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        """The optimizer's internal state (step counts, moment buffers) as JSON values and numpy arrays.

        Never pickled objects: the result can be saved in a ModularML file.
        """
        ...

    def set_optimizer_state(self, optimizer: Any, state: Mapping[str, Any]) -> None:
        """Restore state from :meth:`get_optimizer_state` into an optimizer built over like-shaped parameters.

        Raises:
            InvalidArgumentError: If the state does not fit the optimizer's parameters.
        """
        ...

    def optimizer_step(
        self, optimizer: Any, grads: Sequence[Any] | None = None, variables: Sequence[Any] | None = None
    ) -> None:
        """One optimizer update from gradients that are already computed.

        Torch-like backends use the gradients stored on the parameters and ignore ``grads``;
        TensorFlow-like backends apply ``grads`` to ``variables``.
        """
        ...

    # -- gradients ------------------------------------------------------------------------------
    def gradient_scope(self) -> AbstractContextManager[Any]:
        """A context in which operations are recorded for gradients.

        Yields the recording object the backend needs later (TF: a ``GradientTape``; torch and
        numpy-like backends: ``None``), which the caller passes to :meth:`apply_gradients`.
        Compute the loss inside the scope; call :meth:`apply_gradients` after it.
        """
        ...

    def apply_gradients(self, loss: Any, optimizer: Any, parameters: Sequence[Any], scope: Any) -> None:
        """One backward pass and one optimizer step.

        Clears previous gradients (``zero_grad`` where the framework accumulates them), computes
        the gradients of ``loss`` with respect to ``parameters`` and steps ``optimizer`` once.

        Args:
            loss: A native scalar tensor computed inside :meth:`gradient_scope`.
            optimizer: A native optimizer from :meth:`build_optimizer`.
            parameters: The native parameters to update (those the optimizer was built over).
            scope: What :meth:`gradient_scope` yielded.

        Raises:
            InvalidArgumentError: If ``loss`` is not a scalar, or recorded no operations
                (computed under :meth:`no_grad`); the parameters are then left unchanged.
        """
        ...
