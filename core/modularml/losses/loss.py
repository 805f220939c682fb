"""``Loss``: one wrapper for a loss of any backend, given by name, class, callable or factory."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from modularml.backends.backend import Backend, backend_knows, get_backend, not_trainable_message
from modularml.backends.components import import_path, infer_backend
from modularml.errors import BackendNotSupportedError, LossError, SerializationError

__all__ = ["FILE_KIND", "Loss"]

#: The file kind of a saved loss: ``<name>.ls.mml``.
FILE_KIND = "ls"

LossSource = Literal["name", "class", "callable", "factory"]
_SOURCES: tuple[str, ...] = ("name", "class", "callable", "factory")


class Loss:
    """Backend-agnostic wrapper around loss functions used in model training.

    A loss is given as one of:

    - a **name** (``Loss("mse", backend="torch")``), looked up by the backend
      (:meth:`~modularml.backends.TrainableBackendProtocol.resolve_loss`): first among losses
      that plugins registered for it, then among the framework's own classes, ignoring case,
      underscores and a trailing ``"loss"`` (``"mse"``, ``"MSELoss"``);
    - a **class** of a backend (``torch.nn.MSELoss``); the backend is inferred when omitted;
    - a **callable** ``fn(outputs, targets, ...)``; used as it is, with ``loss_kwargs`` bound;
    - a **factory**: a callable that returns the loss callable when invoked with ``loss_kwargs``.

    The backend's loss object is constructed lazily, by :meth:`build` (or the first call).
    Losses default to ``reduction="none"``: they return a value per sample (or per element),
    which ModularML weights and averages itself.

    Attributes:
        name (str | None): Lowercase name of the selected loss when applicable.
        cls (type | None): Backing loss class when using backend libraries.
        fn (Callable | None): Direct loss callable if provided (or found by name).
        factory (Callable | None): Factory producing the loss callable, if given.
        reduction (str): Reduction passed to backend constructors.
        kwargs (dict[str, Any]): Keyword arguments used for construction.
        _backend (Backend | None): Resolved backend.

    Example:
        >>> loss = Loss("mse", backend="torch")
        >>> per_sample = loss(outputs, targets)
    """

    def __init__(
        self,
        loss: str | type | Callable | None = None,
        *,
        loss_kwargs: dict[str, Any] | None = None,
        backend: Backend | str | None = None,
        reduction: str = "none",
        factory: Callable | None = None,
    ) -> None:
        """Initialize the loss wrapper with a name, class, callable, or factory.

        Args:
            loss (str | type | Callable | None): Loss identifier, class, or callable; mutually
                exclusive with ``factory``.
            loss_kwargs (dict[str, Any] | None): Keyword arguments passed to loss construction.
            backend (Backend | None): Backend; required when ``loss`` is a string or ``factory``
                is given, inferred for a backend's own loss class.
            reduction (str): Reduction argument forwarded to backend constructors.
            factory (Callable | None): Callable producing a loss instance when invoked.

        Raises:
            LossError: If both ``loss`` and ``factory`` are given, neither is, a needed backend is
                missing or cannot be inferred, or an argument has the wrong type. (``LossError`` is
                a ``ValueError``.)
            NotRegisteredError: If a loss name is unknown to the backend; the message lists the
                available names.
            BackendNotSupportedError: If ``backend`` is unknown, or cannot build losses.
        """
        if loss is not None and factory is not None:
            raise LossError(
                f"Loss() takes either a loss or a factory, not both; got loss={loss!r} and factory={factory!r}."
            )
        if loss is None and factory is None:
            raise LossError(
                "Loss() needs a loss: a name with a backend (Loss('mse', backend='torch')), a loss class, a "
                "callable, or factory=."
            )
        if loss_kwargs is not None and not isinstance(loss_kwargs, Mapping):
            raise LossError(f"loss_kwargs is a dict of keyword arguments; got {loss_kwargs!r}.")
        if not isinstance(reduction, str):
            raise LossError(f"reduction is a string such as 'none', 'mean' or 'sum'; got {reduction!r}.")
        self.name: str | None = None
        self.cls: type | None = None
        self.fn: Callable | None = None
        self.factory: Callable | None = None
        self.reduction = reduction
        self.kwargs: dict[str, Any] = dict(loss_kwargs or {})
        self._backend: Backend | None = Backend(backend) if backend is not None else None
        self._callable: Callable | None = None
        self._mean_callable: Callable | bool | None = False  # False: not asked yet; None: the backend has none
        self._construction: dict[str, Any] = {}
        self._lookup_name: str | None = None
        self._source: LossSource

        if factory is not None:
            if not callable(factory):
                raise LossError(f"factory must be callable (it returns the loss when called); got {factory!r}.")
            if self._backend is None:
                raise LossError(
                    f"Loss(factory={_describe(factory)}) needs backend=: the backend cannot be inferred from a factory."
                )
            self.factory = factory
            self.name = _lower_name(factory)
            self._source = "factory"
        elif isinstance(loss, str):
            if self._backend is None:
                raise LossError(
                    f"Loss({loss!r}) names a loss, and loss names are looked up per backend: pass backend= "
                    f"(e.g. Loss({loss!r}, backend='torch')), or pass the loss class or function itself."
                )
            spec = self._trainable(self._backend).resolve_loss(loss)
            if isinstance(spec, type):
                self.cls = spec
            else:
                self.fn = spec
            self.name = loss.lower()
            self._lookup_name = loss
            self._source = "name"
        elif isinstance(loss, type):
            self.cls = loss
            self.name = loss.__name__.lower()
            self._source = "class"
            if self._backend is None:
                inferred = infer_backend(loss, "losses")
                if inferred is None:
                    raise LossError(
                        f"Cannot infer the backend of the loss class {_describe(loss)}: no installed backend "
                        "registered it or owns its module. Pass backend= explicitly."
                    )
                self._backend = Backend(inferred)
        elif callable(loss):
            self.fn = loss
            self.name = _lower_name(loss)
            self._source = "callable"
            if self._backend is None:
                inferred = infer_backend(loss, "losses")
                self._backend = Backend(inferred) if inferred is not None else None
        else:
            raise LossError(f"A loss is a name, a class or a callable; got {loss!r} ({type(loss).__name__}).")

    # ------------------------------------------------------------------ properties
    @property
    def backend(self) -> Backend:
        """Backend configured for this :class:`Loss`.

        Raises:
            LossError: If the backend has not been set.
        """
        if self._backend is None:
            raise LossError(
                f"The loss {self._describe_loss()} has no backend yet: pass backend= to Loss() or to build()."
            )
        return self._backend

    @property
    def is_built(self) -> bool:
        """Whether the underlying loss callable has been instantiated."""
        return self._callable is not None

    @property
    def allowed_keywords(self) -> list[str]:
        """Valid keyword arguments for the built loss callable (e.g. ``["input", "target"]``).

        For a loss object whose ``__call__`` takes only ``*args, **kwargs`` (a ``torch.nn.Module``),
        the arguments of its ``forward`` (or Keras' ``call``) are listed.

        Raises:
            LossError: If the loss has not been built yet (``LossError`` is a ``RuntimeError``).
        """
        if self._callable is None:
            raise LossError(f"The loss {self._describe_loss()} is not built yet; call build() first.")
        names = _keyword_names(self._callable)
        if not names:
            for attribute in ("forward", "call"):
                method = getattr(self._callable, attribute, None)
                if callable(method):
                    names = _keyword_names(method)
                    if names:
                        break
        return names

    # ------------------------------------------------------------------ building and calling
    def build(self, *, backend: Backend | str | None = None, force_rebuild: bool = False, **kwargs: Any) -> None:
        """Instantiate the loss callable if not already provided.

        Args:
            backend (Backend | None): Backend to use; sets it when the loss has none, and must
                match it otherwise.
            force_rebuild (bool): Whether to rebuild even if already instantiated.
            **kwargs (Any): Additional keyword arguments forwarded to loss construction (over
                ``loss_kwargs``, for this build only).

        Raises:
            LossError: If rebuilding an already built loss without ``force_rebuild``, if
                ``backend`` differs from the loss's backend, if no backend is set (a plain
                callable needs none), or if a factory returns something that is not callable.
            BackendNotSupportedError: If the backend cannot construct losses.
        """
        if self._callable is not None and not force_rebuild:
            raise LossError(
                f"The loss {self._describe_loss()} is already built; pass force_rebuild=True to build it again."
            )
        if backend is not None:
            requested = Backend(backend)
            if self._backend is not None and requested != self._backend:
                raise LossError(
                    f"The loss {self._describe_loss()} belongs to backend {str(self._backend)!r}, not "
                    f"{str(requested)!r}; create a Loss for {str(requested)!r} instead."
                )
            self._backend = requested
        construction = {**self.kwargs, **kwargs}
        self._mean_callable = False
        self._construction = construction
        if self._source == "callable" and self._backend is None:
            self._callable = functools.partial(self.fn, **construction) if construction else self.fn
            return
        if self._backend is None:
            raise LossError(f"The loss {self._describe_loss()} has no backend: pass backend= to Loss() or to build().")
        if self._source == "factory":
            built = self.factory(**construction)
            if not callable(built):
                raise LossError(
                    f"The loss factory {_describe(self.factory)} returned {built!r}, which is not callable; a factory "
                    "returns the loss callable."
                )
            self._callable = built
            return
        spec = self.cls if self.cls is not None else self.fn
        self._callable = self._trainable(self._backend).build_loss(spec, construction, self.reduction)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the loss, building it first if needed.

        Returns:
            Any: Whatever the backend's loss returns; with ``reduction="none"``, a native tensor
            with the batch axis first.
        """
        if self._callable is None:
            self.build()
        return self._callable(*args, **kwargs)

    def _fused_mean(self) -> Callable | None:
        """The backend's one-operation mean of this loss's unreduced values (see ``build_mean_loss`` in
        :class:`~modularml.backends.protocol.TrainableBackendProtocol`), or None where there is none.

        Only for a loss built from a class or function with ``reduction="none"`` (a factory's loss,
        or a loss asked for another reduction, is called as it is). Built once per :meth:`build`.
        """
        if self._mean_callable is False:
            if self._callable is None:
                self.build()
            fused = None
            if self.reduction == "none" and self._backend is not None and self._source in ("name", "class", "callable"):
                builder = getattr(get_backend(self._backend), "build_mean_loss", None)
                if callable(builder):
                    fused = builder(self.cls if self.cls is not None else self.fn, self._construction)
            self._mean_callable = fused
        return self._mean_callable  # type: ignore[return-value]

    # ------------------------------------------------------------------ config and files
    def get_config(self) -> dict[str, Any]:
        """Return configuration required to reconstruct this loss wrapper.

        A class, callable or factory is recorded by its import path (``"module:QualName"``); one
        without an import path (a lambda, a local function) is kept as the object itself, which
        works in memory but cannot be saved to a file. A class the backend finds by its own name
        is recorded by that name.

        Returns:
            dict[str, Any]: ``loss``, ``source`` (``"name"``, ``"class"``, ``"callable"`` or
            ``"factory"``), ``loss_kwargs``, ``backend`` and ``reduction``.
        """
        source: str = self._source
        if source == "name":
            reference: Any = self._lookup_name
        elif source == "factory":
            reference = _reference(self.factory)
        elif source == "class":
            reference = _reference(self.cls)
            if self._backend is not None and self._found_by_name(self.cls):
                source, reference = "name", self.cls.__name__
        else:
            reference = _reference(self.fn)
        return {
            "loss": reference,
            "source": source,
            "loss_kwargs": dict(self.kwargs),
            "backend": None if self._backend is None else str(self._backend),
            "reduction": self.reduction,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, allow_packaged_code: bool = False) -> Loss:
        """Construct a :class:`Loss` from configuration.

        Classes and callables recorded by import path are imported from modularml and installed
        ModularML plugins only, unless ``allow_packaged_code`` is True (they run when the loss is
        built or called).

        Args:
            config (dict[str, Any]): Serialized configuration dictionary from :meth:`get_config`.
            allow_packaged_code (bool): Allow importing a loss from any module.

        Returns:
            Loss: Rebuilt (unbuilt) loss wrapper instance.

        Raises:
            LossError: If the config is malformed.
            SerializationError: If a recorded import path may not or cannot be imported.
        """
        if not isinstance(config, Mapping) or config.get("source") not in _SOURCES or "loss" not in config:
            raise LossError(f"A loss config is the dict returned by Loss.get_config(); got {config!r:.200}.")
        from modularml.plugins.resolver import loading, resolve

        source, reference = config["source"], config["loss"]
        options = {
            "loss_kwargs": dict(config.get("loss_kwargs") or {}),
            "backend": config.get("backend"),
            "reduction": config.get("reduction", "none"),
        }
        with loading(allow_packaged_code=allow_packaged_code, what="loss"):
            if source != "name" and isinstance(reference, str):
                backend = None if options["backend"] is None else str(Backend(options["backend"]))
                reference = resolve(
                    reference,
                    what=f"loss {source}",
                    entry="config['loss']",
                    kind="losses",
                    backend=backend,
                    functions=source != "class",
                    recognized=functools.partial(backend_knows, "resolve_loss", backend),
                )
            if source == "factory":
                return cls(factory=reference, **options)
            return cls(reference, **options)

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serialize this loss wrapper to disk (its configuration; a loss holds no learned state).

        Args:
            filepath (Path): Destination path; the name is completed to ``<name>.ls.mml``.
            overwrite (bool): Whether to overwrite existing files.

        Returns:
            Path: Actual file path written by the serializer.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If the loss is a lambda or local function (it has no import path),
                or ``loss_kwargs`` hold values that cannot be saved.
        """
        from modularml.io import write_container

        config = self.get_config()
        if not isinstance(config["loss"], str):
            raise SerializationError(
                f"The loss {self._describe_loss()} cannot be saved: a lambda or local function has no import path. "
                "Define it at module level (or save the code that creates the Loss instead)."
            )
        return write_container(filepath, kind=FILE_KIND, cls=Loss, config=config, state={}, overwrite=overwrite)

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False) -> Loss:
        """Load a loss wrapper from disk.

        Args:
            filepath (Path): Path to a serialized loss artifact.
            allow_packaged_code (bool): Whether a loss class or function from outside modularml
                and its installed plugins may be imported.

        Returns:
            Loss: Reloaded (unbuilt) loss instance.

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is damaged, not a loss, or names an unavailable loss.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND)
        container.require_class(Loss)
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="loss"):
            return cls.from_config(container.config, allow_packaged_code=allow_packaged_code)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _trainable(backend: Backend) -> Any:
        impl = get_backend(backend)
        if not callable(getattr(impl, "build_loss", None)) or not callable(getattr(impl, "resolve_loss", None)):
            raise BackendNotSupportedError(
                not_trainable_message(backend, "train with losses (it implements no resolve_loss/build_loss)")
            )
        return impl

    def _found_by_name(self, cls: type) -> bool:
        return backend_knows("resolve_loss", self._backend, cls)

    def _describe_loss(self) -> str:
        if self._source == "name":
            return repr(self._lookup_name)
        return _describe(self.factory if self._source == "factory" else (self.cls or self.fn))

    def __repr__(self) -> str:
        backend = None if self._backend is None else str(self._backend)
        kwargs = f", loss_kwargs={self.kwargs!r}" if self.kwargs else ""
        what = f"factory={_describe(self.factory)}" if self._source == "factory" else self._describe_loss()
        return f"Loss({what}, backend={backend!r}, reduction={self.reduction!r}{kwargs}, built={self.is_built})"


def _describe(obj: Any) -> str:
    path = import_path(obj)
    return path if path is not None else repr(obj)


def _lower_name(obj: Any) -> str | None:
    name = getattr(obj, "__name__", None)
    return name.lower() if isinstance(name, str) and name != "<lambda>" else None


def _reference(obj: Any) -> Any:
    path = import_path(obj)
    return path if path is not None else obj


def _keyword_names(fn: Callable) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in signature.parameters.items() if p.kind in kinds and name != "self"]
