"""``Optimizer``: one wrapper for an optimizer of any trainable backend, built lazily over parameters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from modularml.backends.backend import Backend, backend_knows, get_backend, not_trainable_message
from modularml.backends.components import import_path, infer_backend
from modularml.errors import (
    BackendNotSupportedError,
    InvalidArgumentError,
    InvalidTypeError,
    OptimizerNotSetError,
    SerializationError,
)

__all__ = ["FILE_KIND", "Optimizer"]

#: The file kind of a saved optimizer: ``<name>.op.mml``.
FILE_KIND = "op"

OptimizerSource = Literal["name", "class", "factory"]
_SOURCES: tuple[str, ...] = ("name", "class", "factory")


class Optimizer:
    """Backend-agnostic optimizer wrapper that lazily constructs backend objects.

    An optimizer is given as a **name** (``Optimizer("adam", opt_kwargs={"lr": 1e-3},
    backend="torch")``, looked up case-insensitively by the backend: plugin registrations first,
    then the framework's own classes), a backend **class** (the backend is then inferred when
    omitted), or a **factory** (``factory=``, with ``backend=``). Nothing is constructed until
    :meth:`build` receives the parameters to optimize, which ModularML collects from the unfrozen
    model nodes. State set before that (:meth:`set_state`, or from a file) is kept pending and
    restored right after the build.

    Attributes:
        name (str | None): Lowercase name of the optimizer when known.
        cls (type | None): Backend optimizer class, when the optimizer is (or resolved to) a class.
        factory (Callable | None): Factory building the optimizer, if given.
        kwargs (dict[str, Any]): Keyword arguments applied when instantiating the optimizer.
        _backend (Backend | None): Resolved backend for this optimizer.
        instance (Any | None): Concrete optimizer object once built.
        parameters (Any | None): Model parameters the optimizer was built over.
        _pending_state (dict[str, Any] | None): Deferred backend state restored after :meth:`build`.

    Example:
        >>> opt = Optimizer("sgd", opt_kwargs={"lr": 0.1}, backend="torch")
        >>> opt.build(parameters=list(model.parameters()))
    """

    def __init__(
        self,
        opt: str | type | None = None,
        *,
        opt_kwargs: dict[str, Any] | None = None,
        factory: Callable | None = None,
        backend: Backend | str | None = None,
    ) -> None:
        """Initialize the optimizer wrapper from a name, class, or factory.

        Args:
            opt (str | type | None): Optimizer name or class, mutually exclusive with ``factory``.
            opt_kwargs (dict[str, Any] | None): Keyword arguments provided when instantiating the
                optimizer.
            factory (Callable | None): Callable returning an optimizer when invoked during
                :meth:`build` (see :meth:`~modularml.backends.TrainableBackendProtocol.build_optimizer`
                for its arguments).
            backend (Backend | None): Backend; required for a name or a factory.

        Raises:
            ValueError: If arguments conflict, the backend is missing when required or cannot be
                inferred, or the name is unknown to the backend.
            TypeError: If ``opt`` is neither a string nor a type, or ``factory`` is not callable.
        """
        if opt is not None and factory is not None:
            raise InvalidArgumentError(
                f"Optimizer() takes either opt or factory, not both; got opt={opt!r} and factory={factory!r}."
            )
        if opt is None and factory is None:
            raise InvalidArgumentError(
                "Optimizer() needs an optimizer: a name with a backend (Optimizer('adam', backend='torch')), an "
                "optimizer class, or factory= with backend=."
            )
        if opt_kwargs is not None and not isinstance(opt_kwargs, Mapping):
            raise InvalidTypeError(f"opt_kwargs is a dict of keyword arguments; got {opt_kwargs!r}.")
        self.name: str | None = None
        self.cls: type | None = None
        self.factory: Callable | None = None
        self.kwargs: dict[str, Any] = dict(opt_kwargs or {})
        self._backend: Backend | None = Backend(backend) if backend is not None else None
        self.instance: Any | None = None
        self.parameters: Any | None = None
        self._pending_state: dict[str, Any] | None = None
        self._spec: Any = None
        self._lookup_name: str | None = None
        self._source: OptimizerSource

        if factory is not None:
            if not callable(factory):
                raise InvalidTypeError(f"factory must be callable (it returns the optimizer); got {factory!r}.")
            if self._backend is None:
                raise InvalidArgumentError(
                    f"Optimizer(factory={_describe(factory)}) needs backend=: it cannot be inferred from a factory. "
                    "Use Optimizer.from_factory(factory, backend=...)."
                )
            self.factory = self._spec = factory
            name = getattr(factory, "__name__", None)
            self.name = name.lower() if isinstance(name, str) and name != "<lambda>" else None
            self._source = "factory"
        elif isinstance(opt, str):
            if self._backend is None:
                raise InvalidArgumentError(
                    f"Optimizer({opt!r}) names an optimizer, and names are looked up per backend: pass backend= "
                    f"(e.g. Optimizer({opt!r}, backend='torch')), or pass the optimizer class itself."
                )
            self._spec = self._trainable(self._backend).resolve_optimizer(opt)
            self.cls = self._spec if isinstance(self._spec, type) else None
            self.name = opt.lower()
            self._lookup_name = opt
            self._source = "name"
        elif isinstance(opt, type):
            self.cls = self._spec = opt
            self.name = opt.__name__.lower()
            self._source = "class"
            if self._backend is None:
                inferred = infer_backend(opt, "optimizers")
                if inferred is None:
                    raise InvalidArgumentError(
                        f"Cannot infer the backend of the optimizer class {_describe(opt)}: no installed backend "
                        "registered it or owns its module. Pass backend= explicitly."
                    )
                self._backend = Backend(inferred)
        else:
            raise InvalidTypeError(
                f"opt is an optimizer name or class; got {opt!r} ({type(opt).__name__}). For a function that "
                "creates the optimizer, use factory=."
            )

    @classmethod
    def from_factory(cls, factory: Callable, *, backend: Backend | str) -> Optimizer:
        """Instantiate an :class:`Optimizer` directly from a factory and backend.

        Args:
            factory (Callable): Callable that produces an optimizer instance.
            backend (Backend): Backend applied to the optimizer.

        Returns:
            Optimizer: New wrapper configured to call the provided factory.
        """
        return cls(factory=factory, backend=backend)

    # ------------------------------------------------------------------ properties
    @property
    def backend(self) -> Backend | None:
        """Backend associated with this optimizer, if set."""
        return self._backend

    @property
    def is_built(self) -> bool:
        """Whether the backend optimizer instance has been constructed."""
        return self.instance is not None

    # ------------------------------------------------------------------ building and stepping
    def build(
        self,
        *,
        parameters: Any | None = None,
        backend: Backend | str | None = None,
        force_rebuild: bool = False,
    ) -> None:
        """Instantiate the backend optimizer if not already provided.

        Pending state (from :meth:`set_state` or a file) is restored into the new optimizer.

        Args:
            parameters (Any | None): Trainable parameters (native tensors) to optimize; an
                iterable is materialized to a list. On ``force_rebuild`` without parameters, the
                previous ones are reused.
            backend (Backend | None): Backend override enforced before construction; sets the
                backend when none is set, and must match it otherwise.
            force_rebuild (bool): Whether to rebuild even if the optimizer is already instantiated.

        Raises:
            OptimizerNotSetError: If attempting to rebuild without ``force_rebuild``.
            ValueError: If the backend differs from the optimizer's, none is set, or the backend
                needs parameters and none were given.
            BackendNotSupportedError: If the backend cannot build optimizers.
        """
        if self.instance is not None and not force_rebuild:
            raise OptimizerNotSetError(
                f"The optimizer {self._describe_opt()} is already built; pass force_rebuild=True to build it again "
                "(its state starts afresh)."
            )
        if backend is not None:
            requested = Backend(backend)
            if self._backend is not None and requested != self._backend:
                raise InvalidArgumentError(
                    f"The optimizer {self._describe_opt()} belongs to backend {str(self._backend)!r}, not "
                    f"{str(requested)!r}; a global optimizer cannot span backends, so give each backend's nodes "
                    "their own optimizer."
                )
            self._backend = requested
        if self._backend is None:
            raise InvalidArgumentError(f"The optimizer {self._describe_opt()} has no backend: pass backend=.")
        if parameters is None:
            parameters = self.parameters
        elif isinstance(parameters, Iterable) and not isinstance(parameters, (list, tuple, Mapping)):
            parameters = list(parameters)
        impl = self._trainable(self._backend)
        instance = impl.build_optimizer(self._spec, dict(self.kwargs), parameters)
        if self._pending_state is not None:
            impl.set_optimizer_state(instance, self._pending_state)  # raises before anything changes here
        self.instance, self.parameters, self._pending_state = instance, parameters, None

    def step(self, grads: Any = None, variables: Any = None) -> None:
        """Perform one backend optimizer step from gradients that are already computed.

        Args:
            grads (Any | None): Gradient tensors, for backends that apply given gradients
                (TensorFlow); torch-like backends use the gradients stored on the parameters.
            variables (Any | None): Trainable variables paired with ``grads``.

        Raises:
            OptimizerNotSetError: If the optimizer has not been built.
            ValueError: If the backend requires gradients or variables that are missing.
        """
        if self.instance is None:
            raise OptimizerNotSetError(
                f"The optimizer {self._describe_opt()} is not built yet; call build(parameters=...) before step()."
            )
        self._trainable(self._backend).optimizer_step(self.instance, grads, variables)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Capture serialized optimizer state including backend internals.

        Returns:
            dict[str, Any]: ``is_built`` and ``backend_state`` (JSON values and numpy arrays from
            the backend; the pending state of an unbuilt optimizer; ``None`` if there is none).
        """
        if self.instance is not None:
            backend_state = self._trainable(self._backend).get_optimizer_state(self.instance)
        else:
            backend_state = self._pending_state
        return {"is_built": self.is_built, "backend_state": backend_state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Store serialized state for later restoration during :meth:`build`.

        A built optimizer receives the state at once.

        Args:
            state (dict[str, Any]): Serialized optimizer state produced by :meth:`get_state`.

        Raises:
            InvalidArgumentError: If ``state`` is not one :meth:`get_state` produced, or does not
                fit the built optimizer.
        """
        if not isinstance(state, Mapping) or "backend_state" not in state:
            raise InvalidArgumentError(
                f"An optimizer state is the dict returned by Optimizer.get_state(); got {state!r:.200}."
            )
        backend_state = state["backend_state"]
        if backend_state is None:
            return
        if not isinstance(backend_state, Mapping):
            raise InvalidArgumentError(f"An optimizer's backend_state is a dict; got {backend_state!r:.200}.")
        if self.instance is not None:
            self._trainable(self._backend).set_optimizer_state(self.instance, dict(backend_state))
        else:
            self._pending_state = dict(backend_state)

    # ------------------------------------------------------------------ config and files
    def get_config(self) -> dict[str, Any]:
        """Return the serialized configuration for this optimizer.

        A class or factory is recorded by its import path (``"module:QualName"``) unless the
        backend finds the class by its own name; one without an import path (a lambda) is kept as
        the object itself, which works in memory but cannot be saved to a file.

        Returns:
            dict[str, Any]: ``opt``, ``source`` (``"name"``, ``"class"`` or ``"factory"``),
            ``opt_kwargs`` and ``backend``.
        """
        source: str = self._source
        if source == "name":
            reference: Any = self._lookup_name
        else:
            obj = self.factory if source == "factory" else self.cls
            path = import_path(obj)
            reference = path if path is not None else obj
            if source == "class" and self._backend is not None and self._found_by_name(self.cls):
                source, reference = "name", self.cls.__name__
        return {
            "opt": reference,
            "source": source,
            "opt_kwargs": dict(self.kwargs),
            "backend": None if self._backend is None else str(self._backend),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, allow_packaged_code: bool = False) -> Optimizer:
        """Instantiate an optimizer from serialized configuration.

        Classes and factories recorded by import path are imported from modularml and installed
        ModularML plugins only, unless ``allow_packaged_code`` is True.

        Args:
            config (dict[str, Any]): Configuration dictionary produced by :meth:`get_config`.
            allow_packaged_code (bool): Allow importing an optimizer class or factory from any module.

        Returns:
            Optimizer: Reconstructed (unbuilt) optimizer wrapper.

        Raises:
            InvalidArgumentError: If the config is malformed.
            SerializationError: If a recorded import path may not or cannot be imported.
        """
        if not isinstance(config, Mapping) or config.get("source") not in _SOURCES or "opt" not in config:
            raise InvalidArgumentError(
                f"An optimizer config is the dict returned by Optimizer.get_config(); got {config!r:.200}."
            )
        from modularml.plugins.resolver import loading, resolve

        source, reference = config["source"], config["opt"]
        kwargs = dict(config.get("opt_kwargs") or {})
        backend = config.get("backend")
        with loading(allow_packaged_code=allow_packaged_code, what="optimizer"):
            if source != "name" and isinstance(reference, str):
                name = None if backend is None else str(Backend(backend))
                reference = resolve(
                    reference,
                    what=f"optimizer {source}",
                    entry="config['opt']",
                    kind="optimizers",
                    backend=name,
                    functions=source == "factory",
                    recognized=functools.partial(backend_knows, "resolve_optimizer", name),
                )
            if source == "factory":
                return cls(factory=reference, opt_kwargs=kwargs, backend=backend)
            return cls(reference, opt_kwargs=kwargs, backend=backend)

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serialize the optimizer (configuration and state) to disk; nothing is pickled.

        Args:
            filepath (Path): Destination path; the name is completed to ``<name>.op.mml``.
            overwrite (bool): Whether to overwrite an existing artifact.

        Returns:
            Path: Actual file path written by the serializer.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If the factory is a lambda or local function, or a value cannot
                be stored without pickling.
        """
        from modularml.io import write_container

        config = self.get_config()
        if not isinstance(config["opt"], str):
            raise SerializationError(
                f"The optimizer {self._describe_opt()} cannot be saved: a lambda or local function has no import "
                "path. Define the factory at module level."
            )
        return write_container(
            filepath, kind=FILE_KIND, cls=Optimizer, config=config, state=self.get_state(), overwrite=overwrite
        )

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False) -> Optimizer:
        """Load a serialized optimizer from disk.

        The loaded optimizer is not built; its saved state is pending and restored when
        :meth:`build` is called over like-shaped parameters.

        Args:
            filepath (Path): Path to a serialized optimizer artifact.
            allow_packaged_code (bool): Whether an optimizer class or factory from outside
                modularml and its installed plugins may be imported.

        Returns:
            Optimizer: Reloaded optimizer instance.

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is damaged, not an optimizer, or names an unavailable one.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND)
        container.require_class(Optimizer)
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="optimizer"):
            optimizer = cls.from_config(container.config, allow_packaged_code=allow_packaged_code)
            optimizer.set_state(container.state)
        return optimizer

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _trainable(backend: Backend | None) -> Any:
        impl = get_backend(backend)
        needed = ("resolve_optimizer", "build_optimizer", "optimizer_step", "get_optimizer_state")
        if not all(callable(getattr(impl, method, None)) for method in needed):
            raise BackendNotSupportedError(
                not_trainable_message(
                    str(backend), "train with optimizers (it implements no resolve_optimizer/build_optimizer)"
                )
            )
        return impl

    def _found_by_name(self, cls: type) -> bool:
        return backend_knows("resolve_optimizer", self._backend, cls)

    def _describe_opt(self) -> str:
        if self._source == "name":
            return repr(self._lookup_name)
        return _describe(self.factory if self._source == "factory" else self.cls)

    def __repr__(self) -> str:
        backend = None if self._backend is None else str(self._backend)
        kwargs = f", opt_kwargs={self.kwargs!r}" if self.kwargs else ""
        what = f"factory={_describe(self.factory)}" if self._source == "factory" else self._describe_opt()
        return f"Optimizer({what}, backend={backend!r}{kwargs}, built={self.is_built})"


def _describe(obj: Any) -> str:
    path = import_path(obj)
    return path if path is not None else repr(obj)
