"""``TorchBaseModel``: a ModularML ``BaseModel`` that is also a ``torch.nn.Module``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from modularml.backends import get_backend
from modularml.backends.common import accepts_keyword
from modularml.errors import InvalidArgumentError
from modularml.models import BaseModel, ShapedModel

__all__ = ["TorchBaseModel"]

logger = logging.getLogger("modularml.torch.models")


def _all_in_mode(module: nn.Module, mode: bool) -> bool:
    """Whether ``module`` and every submodule have ``training is mode`` (a plain walk: no generator, no memo set)."""
    pending = [module]
    while pending:
        current = pending.pop()
        if current is None:
            continue
        if current.training is not mode:
            return False
        pending.extend(current._modules.values())
    return True


class TorchBaseModel(ShapedModel, nn.Module):
    """Base class for ModularML-native PyTorch models.

    A subclass passes its constructor's keyword arguments to ``super().__init__`` (they are kept
    for config round trips, ``input_shape`` and ``output_shape`` included) and implements
    :meth:`_build_layers`, which creates the layers once the per-sample shapes are known, and
    ``forward``. Shapes left out are taken from :meth:`build` (ModularML infers them from the data);
    a model that declares ``requires_output_shape = False`` infers its output shape with one
    forward pass of zeros instead. A subclass that creates its layers in ``__init__``, as plain
    ``nn.Module`` code does, need not implement :meth:`_build_layers` at all.

    Weights (parameters and buffers, ``state_dict()`` order) travel as numpy arrays through
    :meth:`get_weights` and :meth:`set_weights`. Layers are created on the CPU, or on the device
    set with :meth:`to_device`.

    Args:
        input_shape: Per-sample input shape (without the batch axis), or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to infer it.
        **init_args: The subclass's other constructor arguments.
    """

    #: Whether :meth:`build` needs an output shape (most built-in models size their head with it).
    requires_output_shape: bool = False

    def __init__(
        self,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
        **init_args: Any,
    ) -> None:
        nn.Module.__init__(self)
        shapes = {"input_shape": input_shape, "output_shape": output_shape}
        # a subclass that takes no shapes (nor **kwargs) is rebuilt without them
        shapes = {key: value for key, value in shapes.items() if accepts_keyword(type(self), key, default=True)}
        BaseModel.__init__(self, "torch", **shapes, **init_args)
        self._declare_shapes(input_shape, output_shape)
        self._device: str | None = None

    # ------------------------------------------------------------------ shapes
    def build(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Create the layers for the given per-sample shapes (missing ones come from the constructor).

        Building a built model with the same (or no) shapes changes nothing.

        Args:
            input_shape: Per-sample input shape, without the batch axis.
            output_shape: Per-sample output shape, without the batch axis.
            force: Create new layers (new weights) even if the model is built.

        Raises:
            InvalidArgumentError: If a needed shape is missing, disagrees with the declared one, or
                differs from the built one without ``force``.
        """
        shapes = self._build_shapes(input_shape, output_shape, force=force, required=(True, self.requires_output_shape))
        if shapes is None:
            return
        in_shape, out_shape = shapes
        self.__dict__.pop("_reference_param", None)
        self._build_layers(in_shape, out_shape)
        self.__dict__.pop("_reference_param", None)
        if self._device is not None:
            self.to(self._device)
        self._input_shape, self._output_shape = in_shape, out_shape
        self._built = True
        if out_shape is None:
            self._output_shape = self._infer_output_shape(in_shape)

    def _build_layers(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> None:
        """Create the layers for these shapes; the default creates nothing (layers made in ``__init__``)."""

    def _infer_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The per-sample output shape of one forward pass of zeros (in eval mode, no gradients), or None."""
        was_training = self.training
        try:
            self.eval()
            with torch.no_grad():
                zeros = torch.zeros((2, *input_shape), dtype=self._float_dtype(), device=self.device)
                out = self(zeros)
            return tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None
        except Exception as exc:  # any user module: the shape is then simply unknown
            logger.debug("Could not infer the output shape of %s: %s", type(self).__name__, exc)
            return None
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ devices and inputs
    @property
    def device(self) -> str:
        """Canonical name of the device the parameters live on (or will be created on)."""
        for tensor in self.parameters():
            return get_backend("torch").device_of(tensor)
        return self._device or "cpu"

    @device.setter
    def device(self, value: str | torch.device | None) -> None:
        self.to_device(None if value is None else str(value))

    def to_device(self, device: str | None) -> TorchBaseModel:
        """Move the model (and layers built later) to ``device`` (``"cpu"``, ``"cuda:0"``, ``"mps"``).

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        canonical = get_backend("torch")._check_device(device)
        self._device = canonical
        return self.to(canonical)

    def set_training(self, mode: bool = True) -> TorchBaseModel:
        """Switch dropout and batch norm to training (``True``) or inference (``False``) behaviour.

        ``nn.Module.train(mode)`` under a backend-neutral name: graphs put frozen nodes and
        evaluation phases in inference mode. Cheap when every module is already in that mode (graphs
        call this once per training step).
        """
        mode = bool(mode)
        if _all_in_mode(self, mode):
            return self
        return self.train(mode)

    def _reference_parameter(self) -> torch.Tensor | None:
        """The first floating-point parameter (its device and dtype are the model's), cached per step loop.

        The cache is dropped whenever the module is converted (``to``, ``cuda``, ``double``... all go
        through ``_apply``) or rebuilt.
        """
        cached = self.__dict__.get("_reference_param", False)
        if cached is False:
            cached = next((p for p in self.parameters() if p.is_floating_point()), None)
            self.__dict__["_reference_param"] = cached
        return cached

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> TorchBaseModel:
        self.__dict__.pop("_reference_param", None)
        return super()._apply(fn, *args, **kwargs)

    def _float_dtype(self) -> torch.dtype:
        param = self._reference_parameter()
        return param.dtype if param is not None else torch.get_default_dtype()

    def _prepare_input(self, x: Any, *, cast_integers: bool = True) -> torch.Tensor:
        """``x`` as a tensor on the model's device, in the model's float dtype.

        numpy inputs are converted without a copy where possible; integer inputs are cast too
        unless ``cast_integers`` is False. A tensor already in place is returned as it is.
        """
        if not isinstance(x, torch.Tensor):
            x = get_backend("torch").from_numpy(np.asarray(x))
        param = self._reference_parameter()
        device = param.device if param is not None else x.device
        if x.is_floating_point() or cast_integers:
            dtype = param.dtype if param is not None else torch.get_default_dtype()
        else:
            dtype = x.dtype
        if x.device != device or x.dtype != dtype:
            x = x.to(device=device, dtype=dtype)
        return x

    def _check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        if x.ndim < 1:
            raise InvalidArgumentError(f"{name} expects a batch (batch axis first); got a scalar.")
        if not self._built:
            self.build(input_shape=tuple(x.shape[1:]))
        if tuple(x.shape[1:]) != self._input_shape:
            raise InvalidArgumentError(
                f"{name} expects inputs of per-sample shape {self._input_shape}; got a batch of shape {tuple(x.shape)}."
            )

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer (``state_dict()``) as numpy arrays, keyed by name."""
        return {name: tensor.detach().cpu().numpy().copy() for name, tensor in self.state_dict().items()}

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Write weights from :meth:`get_weights` into the built model, in place.

        In place, on the model's device: optimizers built over the parameters keep working.

        Raises:
            InvalidArgumentError: If the model is not built, a weight is missing or unexpected, or a
                shape differs.
        """
        name = type(self).__name__
        if not self._built:
            raise InvalidArgumentError(f"{name} is not built; build it (or use set_state) before set_weights().")
        current = self.state_dict(keep_vars=True)
        if set(weights) != set(current):
            missing, unexpected = sorted(set(current) - set(weights)), sorted(set(weights) - set(current))
            raise InvalidArgumentError(
                f"{name} weights do not match: missing {missing}, unexpected {unexpected}. Use the dict from "
                "get_weights() of a model built with the same arguments and shapes."
            )
        arrays = {key: np.asarray(weights[key]) for key in current}
        for key, tensor in current.items():
            if tuple(arrays[key].shape) != tuple(tensor.shape):
                raise InvalidArgumentError(
                    f"{name} weight {key!r} has shape {tuple(tensor.shape)}; got {arrays[key].shape}."
                )
        with torch.no_grad():
            for key, tensor in current.items():
                tensor.copy_(torch.from_numpy(np.array(arrays[key], order="C")))

    def __repr__(self) -> str:
        return BaseModel.__repr__(self)
