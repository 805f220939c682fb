"""``TorchModelWrapper``: any ``torch.nn.Module`` as a ModularML model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from modularml.backends.common import accepts_keyword
from modularml.backends.components import import_path
from modularml.errors import InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.models import BaseModel
from modularml.plugins.resolver import resolve
from modularml_torch.models.base import TorchBaseModel

__all__ = ["TorchModelWrapper"]


class TorchModelWrapper(TorchBaseModel):
    """Wraps a ``torch.nn.Module`` so that it can sit in a ModularML model graph.

    Give either a module instance (``model=``), used as it is, or a class or factory
    (``model_class=``) with ``model_kwargs``, called when the model is built: if it takes
    ``input_shape`` or ``output_shape`` keyword arguments and ``model_kwargs`` do not set them,
    the shapes inferred from the data are passed in. An output shape left out is found with one
    forward pass of zeros (in eval mode, without gradients).

    Only a wrapper built from a class with an import path can be saved (an instance is not code
    that can be stored); its weights are saved as numpy arrays.

    Args:
        model: The module to wrap.
        model_class: A module class, or a factory returning a module, built lazily.
        model_kwargs: Keyword arguments for ``model_class``.
        input_shape: Per-sample input shape, or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to infer it.

    Raises:
        InvalidArgumentError: If neither or both of ``model`` and ``model_class`` are given.
        InvalidTypeError: If ``model`` is not an ``nn.Module`` (or is already a ModularML model).

    Example:
        >>> wrapper = TorchModelWrapper(model_class=MyNet, model_kwargs={"width": 16})
        >>> wrapper.build(input_shape=(8,))  # MyNet(width=16, input_shape=(8,)) if it takes input_shape
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        model_class: type[nn.Module] | Callable[..., nn.Module] | str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
    ) -> None:
        if (model is None) == (model_class is None):
            raise InvalidArgumentError(
                "TorchModelWrapper takes either model= (an nn.Module instance) or model_class= (a class or factory, "
                f"with model_kwargs=); got model={model!r:.80} and model_class={model_class!r}."
            )
        if model is not None and (isinstance(model, BaseModel) or not isinstance(model, nn.Module)):
            raise InvalidTypeError(
                f"TorchModelWrapper wraps a raw torch.nn.Module; got {type(model).__name__}. A ModularML model needs "
                "no wrapper."
            )
        if isinstance(model_class, str):  # from a file or config: an nn.Module class, or a registered factory
            model_class = resolve(
                model_class,
                what="torch model class",
                entry="model_class",
                kind="models",
                backend="torch",
                base=nn.Module,
                functions=True,
            )
        if model_class is not None and not callable(model_class):
            raise InvalidTypeError(f"model_class is an nn.Module class or a factory; got {model_class!r}.")
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
        self.model: nn.Module | None = model

    def get_init_args(self) -> dict[str, Any]:
        """The constructor's arguments; ``model_class`` as its ``"module:QualName"`` import path when it has one."""
        args = super().get_init_args()
        if self._model_class is not None:
            path = import_path(self._model_class)
            args["model_class"] = path if path is not None else self._model_class
        return args

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Save the wrapper (its class's import path, arguments and weights).

        Raises:
            SerializationError: If it wraps an instance, or a class without an import path.
        """
        if self._model_class is None or import_path(self._model_class) is None:
            raise SerializationError(
                f"This TorchModelWrapper wraps {'an instance' if self._model_class is None else 'a local class'}, "
                "which cannot be saved as code. Wrap a module-level class with model_class=..., "
                "model_kwargs=... instead, or save its weights (get_weights())."
            )
        return super().save(filepath, overwrite=overwrite)

    def _build_layers(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...] | None) -> None:
        if self._model_class is None:
            return
        kwargs = dict(self._model_kwargs)
        for key, value in (("input_shape", input_shape), ("output_shape", output_shape)):
            if key not in kwargs and value is not None and accepts_keyword(self._model_class, key, var_keyword=False):
                kwargs[key] = value
        try:
            model = self._model_class(**kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(f"Cannot build {self._model_class!r} with {kwargs}: {exc}") from exc
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(
                f"model_class {self._model_class!r} returned {type(model).__name__}, not an nn.Module."
            )
        self.model = model

    def forward(self, x: Any, **kwargs: Any) -> Any:
        """Call the wrapped module on ``x`` (moved to its device; builds the wrapper from ``x`` if needed)."""
        x = self._prepare_input(x, cast_integers=False)
        if not self._built:
            self.build(input_shape=tuple(x.shape[1:]))
        return self.model(x, **kwargs)
