"""``BaseModel``: the backend-neutral base of every ModularML model."""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modularml.backends.backend import Backend
from modularml.backends.common import accepts_keyword
from modularml.errors import InvalidArgumentError, InvalidTypeError, SerializationError

__all__ = ["FILE_KIND", "BaseModel", "ShapedModel", "check_model_of", "normalize_shape", "resolve_build_shapes"]

#: The file kind of a saved model: ``<name>.md.mml``.
FILE_KIND = "md"


def normalize_shape(shape: int | Sequence[int] | None, *, what: str = "shape") -> tuple[int, ...] | None:
    """``None`` stays ``None``; an int ``n`` becomes ``(n,)``; a sequence becomes a tuple of ints.

    Raises:
        InvalidArgumentError: If ``shape`` holds anything but non-negative integers.
    """
    if shape is None:
        return None
    if isinstance(shape, np.ndarray):
        shape = shape.tolist()
    try:
        dims = (operator.index(shape),) if not isinstance(shape, Sequence) else tuple(operator.index(s) for s in shape)
    except TypeError:
        raise InvalidArgumentError(
            f"A {what} is an int or a sequence of ints (per sample, without the batch axis); got {shape!r}."
        ) from None
    if any(d < 0 for d in dims):
        raise InvalidArgumentError(f"A {what} holds non-negative sizes; got {shape!r}.")
    return dims


Shape = tuple[int, ...]


def resolve_build_shapes(
    name: str,
    given: tuple[Any, Any],
    declared: tuple[Shape | None, Shape | None],
    built: tuple[Shape | None, Shape | None] | None,
    *,
    required: tuple[bool, bool] = (True, True),
) -> tuple[Shape | None, Shape | None] | None:
    """The (input, output) shapes a model's ``build()`` creates: the given ones, else the declared ones.

    The shared rules of ``build(input_shape, output_shape, force=...)`` for models that take their
    shapes from the constructor or from the graph (``TorchBaseModel``, the numpy test backend's
    ``LinearModel``).

    Args:
        name: The model's name, for messages.
        given: The shapes passed to ``build`` (ints or sequences are normalised).
        declared: The shapes passed to the constructor.
        built: The current shapes when the model is built and not forced to rebuild; else None.
        required: Whether an input and an output shape must be known.

    Returns:
        The resolved shapes, or None when the model is built and the given shapes agree with it
        (nothing to do).

    Raises:
        InvalidArgumentError: If a given shape differs from the built one, or from the declared
            one, or a required shape is missing.
    """
    new = (normalize_shape(given[0], what="input_shape"), normalize_shape(given[1], what="output_shape"))
    whats = ("input", "output")
    if built is not None:
        for what, shape, current in zip(whats, new, built, strict=True):
            if shape is not None and shape != current:
                raise InvalidArgumentError(
                    f"{name} is built for {what} shape {current}, not {shape}; pass force=True to rebuild it "
                    "(with new weights)."
                )
        return None
    resolved: list[Shape | None] = []
    for what, shape, fixed, needed in zip(whats, new, declared, required, strict=True):
        if shape is not None and fixed is not None and shape != fixed:
            raise InvalidArgumentError(
                f"{name} was declared with {what}_shape={fixed} but is built with {what}_shape={shape}."
            )
        shape = shape if shape is not None else fixed
        if shape is None and needed:
            raise InvalidArgumentError(f"{name} needs its {what}_shape to build: pass it to {name}() or to build().")
        resolved.append(shape)
    return resolved[0], resolved[1]


class BaseModel(ABC):
    """Abstract base class for backend-agnostic ModularML models.

    A subclass calls ``super().__init__(backend, **init_args)`` with the keyword arguments its own
    constructor received; they are cached (:meth:`get_init_args`) so that :meth:`get_config` and
    :meth:`from_config` rebuild the model without any per-class code. Learned weights travel
    separately, as numpy arrays, through :meth:`get_state` and :meth:`set_state`.

    A subclass implements :meth:`build` (creating its layers once the per-sample shapes are
    known, then setting ``self._built = True``), :attr:`input_shape`, :attr:`output_shape`,
    :meth:`get_weights`, :meth:`set_weights` and :meth:`forward`.

    Attributes:
        _backend (Backend): Normalized backend powering the model.
        _built (bool): Whether :meth:`build` completed.
        _init_args (dict[str, Any]): Keyword arguments stored for config round trips.
    """

    def __init__(self, backend: str | Backend, **init_args: Any) -> None:
        """Initialize the model with a backend and keyword arguments.

        Args:
            backend (str | Backend): Backend identifier or enum value used to normalize ``_backend``.
            **init_args (Any): Keyword arguments cached for config serialization so subclasses can
                reconstruct themselves.

        Raises:
            BackendNotSupportedError: If ``backend`` names no known or installed backend.
        """
        self._backend = Backend(backend)
        self._built = False
        self._init_args = dict(init_args)

    # ------------------------------------------------------------------ identity
    @property
    def backend(self) -> Backend:
        """The :class:`~modularml.Backend` powering this model."""
        return self._backend

    @property
    def is_built(self) -> bool:
        """True when the model has been built and its shapes resolved."""
        return bool(self._built)

    def set_training(self, mode: bool = True) -> BaseModel:
        """Switch layers whose behaviour differs in training (dropout, batch norm) to ``mode``.

        The model graph calls it before every step: training mode for the unfrozen nodes of a
        train step, inference mode for frozen nodes, evaluation and fitting. The default does
        nothing; backends whose models have such layers override it.

        Returns:
            BaseModel: ``self``.
        """
        return self

    def get_init_args(self) -> dict[str, Any]:
        """Return keyword arguments needed to reconstruct this model.

        Subclasses may override this to control config serialization, but caching ``init_args``
        automatically works for most models.

        Returns:
            dict[str, Any]: Copy of the initialization keyword arguments.
        """
        return dict(self._init_args)

    # ------------------------------------------------------------------ what subclasses implement
    @abstractmethod
    def build(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Build backend layers for the model implementation.

        Building an already built model without ``force`` changes nothing.

        Args:
            input_shape (tuple[int, ...] | None): Per-sample input shape, excluding the batch
                dimension, if known.
            output_shape (tuple[int, ...] | None): Per-sample output shape, excluding the batch
                dimension, if known.
            force (bool): Whether to rebuild even if the model is already constructed.
        """

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...] | None:
        """The expected per-sample input shape (without the batch axis), or None when not yet known."""

    @property
    @abstractmethod
    def output_shape(self) -> tuple[int, ...] | None:
        """The per-sample output shape (without the batch axis), or None when not yet known."""

    @abstractmethod
    def get_weights(self) -> dict[str, np.ndarray]:
        """Return the learned weights as numpy arrays keyed by name (copies, detached, on the CPU)."""

    @abstractmethod
    def set_weights(self, weights: dict[str, Any]) -> None:
        """Restore the weights previously produced by :meth:`get_weights`.

        Args:
            weights (dict[str, Any]): Dictionary returned by :meth:`get_weights`.
        """

    def forward(self, x: Any, **kwargs: Any) -> Any:
        """Run the model on a batch of native tensors (batch axis first) and return its outputs.

        Raises:
            NotImplementedError: If the subclass does not implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward(x); subclasses must define it.")

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Return configuration required to re-instantiate this model.

        Returns:
            dict[str, Any]: ``class`` (``"module:QualName"``), ``backend``, ``init_args`` and the
            build metadata ``is_built``, ``input_shape`` and ``output_shape``.
        """
        return {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "backend": str(self._backend),
            "init_args": self.get_init_args(),
            "is_built": self.is_built,
            "input_shape": self.input_shape,
            "output_shape": self.output_shape,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, allow_packaged_code: bool = False) -> BaseModel:
        """Construct a :class:`BaseModel` from serialized configuration.

        Instantiates a new model with the provided config. Learned weights are not restored;
        call :meth:`set_state` afterwards.

        Called on a subclass, that subclass is constructed. Called on ``BaseModel`` itself, the
        class named in the config is imported: from modularml and installed ModularML plugins
        only, unless ``allow_packaged_code`` is True.

        Args:
            config (dict[str, Any]): Configuration emitted by :meth:`get_config`.
            allow_packaged_code (bool): Allow importing the model class from any module.

        Returns:
            BaseModel: Newly constructed model instance.

        Raises:
            InvalidArgumentError: If the config is not one :meth:`get_config` produced.
            SerializationError: If the named class cannot or may not be imported.
            TypeError: If the class is not a ``BaseModel`` subclass of ``cls``.
        """
        if not isinstance(config, Mapping) or not isinstance(config.get("init_args", {}), Mapping):
            raise InvalidArgumentError(f"A model config is the dict returned by get_config(); got {config!r:.200}.")
        from modularml.plugins.resolver import loading

        with loading(allow_packaged_code=allow_packaged_code, what="model"):
            model_cls: type = cls
            if cls is BaseModel:
                model_cls = _resolve_model_class(config.get("class"), cls, backend=config.get("backend"))
            init_args = dict(config.get("init_args") or {})
            if not all(isinstance(k, str) and k.isidentifier() for k in init_args):
                raise InvalidArgumentError(
                    f"A model config's init_args are keyword arguments; got {sorted(init_args)}."
                )
            backend = config.get("backend")
            if (
                backend is not None
                and "backend" not in init_args
                and accepts_keyword(model_cls, "backend", var_keyword=False)
            ):
                init_args["backend"] = backend
            model = model_cls(**init_args)
            if backend is not None and model.backend != Backend(backend):
                raise InvalidArgumentError(
                    f"The config is for backend {backend!r} but {model_cls.__qualname__} built a {model.backend!r} "
                    "model."
                )
        return model

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Return the learned state: build flag, resolved shapes and weights as numpy arrays.

        Returns:
            dict[str, Any]: ``is_built``, ``input_shape``, ``output_shape`` and ``weights``.
        """
        return {
            "is_built": self.is_built,
            "input_shape": self.input_shape,
            "output_shape": self.output_shape,
            "weights": self.get_weights() if self.is_built else {},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore learned state produced by :meth:`get_state`.

        An unbuilt model is built first with the saved shapes.

        Args:
            state (dict[str, Any]): State dictionary containing weights.

        Raises:
            InvalidArgumentError: If ``state`` is not one :meth:`get_state` produced.
        """
        if not isinstance(state, Mapping) or "weights" not in state or not isinstance(state["weights"], Mapping):
            raise InvalidArgumentError(
                f"A model state is the dict returned by get_state(), with 'weights'; got {state!r:.200}."
            )
        if not state.get("is_built"):
            return
        if not self.is_built:
            self.build(
                normalize_shape(state.get("input_shape"), what="input_shape"),
                normalize_shape(state.get("output_shape"), what="output_shape"),
            )
        self.set_weights(dict(state["weights"]))

    # ------------------------------------------------------------------ files
    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serialize this model to disk (config as JSON, weights as ``.npy`` arrays; never pickled).

        Args:
            filepath (Path): Destination path; the name is completed to ``<name>.md.mml``.
            overwrite (bool): Whether to overwrite an existing artifact.

        Returns:
            Path: Actual file path written by the serializer.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If an init argument or weight cannot be stored without pickling.
        """
        from modularml.io import write_container

        return write_container(
            filepath,
            kind=FILE_KIND,
            cls=type(self),
            config=self.get_config(),
            state=self.get_state(),
            overwrite=overwrite,
        )

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False) -> BaseModel:
        """Load a serialized :class:`BaseModel` from disk.

        Nothing is unpickled. The model class is imported from modularml or an installed
        ModularML plugin; a class from any other module (your own) only with
        ``allow_packaged_code=True``.

        Args:
            filepath (Path): Path pointing to a saved model.
            allow_packaged_code (bool): Whether packaged code execution is permitted for
                user-defined artifacts.

        Returns:
            BaseModel: Reloaded model instance, built and holding the saved weights if it was built.

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is damaged, not a model, or its class is unavailable.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND)
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="model"):
            model_cls = _resolve_model_class(container.class_path, cls, entry="manifest['class']")
            if container.config.get("class") != container.class_path:
                raise SerializationError(
                    f"its manifest names the class {container.class_path!r} but its config "
                    f"{container.config.get('class')!r:.200}; the file was altered."
                )
            model = model_cls.from_config(container.config, allow_packaged_code=allow_packaged_code)
            model.set_state(container.state)
        return model

    def __repr__(self) -> str:
        shapes = f", input_shape={self.input_shape}, output_shape={self.output_shape}" if self.is_built else ""
        return f"{type(self).__name__}(backend={str(self._backend)!r}, built={self.is_built}{shapes})"


class ShapedModel(BaseModel):
    """A :class:`BaseModel` that keeps its declared per-sample shapes and the ones it is built for.

    The shape bookkeeping of models whose ``input_shape`` and ``output_shape`` are optional
    constructor arguments, completed by :meth:`build` (ModularML infers them from the data when the
    model sits in a graph): ``TorchBaseModel``, ``ScikitModelWrapper``, the numpy test backend's
    ``LinearModel``. A subclass calls :meth:`_declare_shapes` in its constructor, after
    ``BaseModel.__init__``, and sets ``_input_shape`` and ``_output_shape`` when it builds (with
    :meth:`_build_shapes`, or by rules of its own).

    Attributes:
        _declared_input (tuple[int, ...] | None): The input shape given to the constructor.
        _declared_output (tuple[int, ...] | None): The output shape given to the constructor.
        _input_shape (tuple[int, ...] | None): The current input shape (declared until built).
        _output_shape (tuple[int, ...] | None): The current output shape (declared until built).
    """

    def _declare_shapes(
        self, input_shape: int | Sequence[int] | None, output_shape: int | Sequence[int] | None
    ) -> None:
        """Record the constructor's shapes (ints or sequences, normalised) as declared and current.

        Raises:
            InvalidArgumentError: If a shape holds anything but non-negative integers.
        """
        self._declared_input = normalize_shape(input_shape, what="input_shape")
        self._declared_output = normalize_shape(output_shape, what="output_shape")
        self._input_shape: Shape | None = self._declared_input
        self._output_shape: Shape | None = self._declared_output

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Per-sample input shape (without the batch axis), once declared, built or fitted; else None."""
        return self._input_shape

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """Per-sample output shape (without the batch axis), once declared, built, inferred or fitted; else None."""
        return self._output_shape

    def _build_shapes(
        self,
        input_shape: Any,
        output_shape: Any,
        *,
        force: bool,
        required: tuple[bool, bool] = (True, True),
    ) -> tuple[Shape | None, Shape | None] | None:
        """The shapes ``build(input_shape, output_shape, force=force)`` creates, by :func:`resolve_build_shapes`.

        Returns:
            The resolved (input, output) shapes, or None when the model is built for the given
            shapes already (nothing to do).

        Raises:
            InvalidArgumentError: If a shape disagrees with the declared or the built one, or a
                required shape is missing.
        """
        return resolve_build_shapes(
            type(self).__name__,
            (input_shape, output_shape),
            (self._declared_input, self._declared_output),
            (self._input_shape, self._output_shape) if self._built and not force else None,
            required=required,
        )


def check_model_of(model: Any, backend: str, *, expected: str) -> None:
    """Check that ``model`` is a built :class:`BaseModel` of ``backend`` with a ``parameters()`` method.

    The guard of a trainable backend's ``model_parameters``.

    Args:
        model: What ``model_parameters`` received.
        backend: The backend's name.
        expected: What the message says was expected (``"a torch-backend BaseModel (an nn.Module)"``),
            with a hint where one helps.

    Raises:
        InvalidTypeError: If ``model`` is not such a model.
        InvalidArgumentError: If the model is not built yet.
    """
    if not (isinstance(model, BaseModel) and model.backend == backend and callable(getattr(model, "parameters", None))):
        raise InvalidTypeError(f"Expected {expected}; got {type(model).__name__}.")
    if not model.is_built:
        raise InvalidArgumentError(f"{type(model).__name__} is not built yet, so it has no parameters; build it first.")


def _resolve_model_class(
    class_path: Any, base: type, *, entry: str = "config['class']", backend: Any = None
) -> type[BaseModel]:
    """The model class a file or config names, through the plugin layer's resolver (a ``base`` subclass).

    A registered name is looked up among the models of ``backend`` (the config's), so a config
    may name ``"SequentialMLP"`` with ``backend = "torch"``.
    """
    from modularml.plugins.resolver import resolve

    scope = str(backend) if isinstance(backend, str) and backend else None
    return resolve(class_path, what="model class", entry=entry, kind="models", base=base, backend=scope)
