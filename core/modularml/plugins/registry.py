"""Registries that plugins fill through the hooks in :mod:`modularml.plugins.hookspecs`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from modularml.errors import BackendNotInstalledError, NotRegisteredError, PluginConflictError, PluginError
from modularml.plugins.known import install_hint, known_backend

__all__ = [
    "BACKEND_SCOPED_KINDS",
    "KINDS",
    "BackendInfo",
    "BackendRegistrar",
    "Entry",
    "Registrar",
    "Registry",
]

#: Every extension point, in the order their hooks are called.
KINDS: tuple[str, ...] = (
    "backends",
    "models",
    "losses",
    "optimizers",
    "scalers",
    "samplers",
    "splitters",
    "callbacks",
    "executors",
)
#: Registries keyed by ``(backend, name)`` rather than by name alone.
BACKEND_SCOPED_KINDS: frozenset[str] = frozenset({"models", "losses", "optimizers"})

_FORBIDDEN_NAME_CHARS = frozenset(" \t\n/\\:")


def _check_name(kind: str, name: object, source: str) -> str:
    if not isinstance(name, str) or not name or _FORBIDDEN_NAME_CHARS & set(name):
        raise PluginError(
            f"Plugin {source!r} registered an invalid {kind[:-1]} name {name!r}: names must be "
            "non-empty strings without whitespace, '/', '\\' or ':'."
        )
    return name


def conflict_error(what: str, first: Entry | BackendInfo, second: Entry | BackendInfo) -> PluginConflictError:
    """The error for a name that two plugins contribute; it names both distributions."""
    return PluginConflictError(
        f"The {what} is contributed twice: by plugin {first.plugin!r} (distribution "
        f"{first.distribution!r}) and by plugin {second.plugin!r} (distribution {second.distribution!r}). "
        "Uninstall one of them, or leave one out with the MODULARML_LOAD_PLUGINS environment variable."
    )


def load_object(path: str) -> Any:
    """Import ``"package.module:attribute"`` (attribute may be dotted) and return it."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"Expected an import path of the form 'module:attribute', got {path!r}.")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Entry:
    """One registered component.

    Attributes:
        kind: The registry it belongs to (``"scalers"``, ``"models"``, ...).
        name: The name it is looked up by.
        obj: The registered object (usually a class).
        backend: Canonical backend name for backend-scoped kinds, else ``None``.
        plugin: Name of the plugin that registered it.
        distribution: Distribution that ships that plugin (``"modularml"`` for built-ins).
    """

    kind: str
    name: str
    obj: Any
    backend: str | None
    plugin: str
    distribution: str

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.backend, self.name)

    def load(self) -> Any:
        """The registered object; one registered as an import path is imported now.

        Raises:
            PluginError: If the registered import path cannot be imported.
        """
        if not isinstance(self.obj, str):
            return self.obj
        try:
            return load_object(self.obj)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"The {self.kind[:-1]} {self.name!r} of plugin {self.plugin!r} (distribution {self.distribution!r}) "
                f"points at {self.obj!r}, which cannot be imported: {exc}. Reinstall it with "
                f"'pip install --force-reinstall {self.distribution}'."
            ) from exc


@dataclass
class BackendInfo:
    """A registered backend: its names, where its implementation lives, and its formats.

    The implementation is created on first use by :meth:`load` and cached, so the framework
    behind it is imported only then.
    """

    name: str
    loader: str | Callable[[], Any]
    aliases: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    framework_module: str | None = None
    description: str = ""
    plugin: str = ""
    distribution: str = ""
    _instance: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def is_loaded(self) -> bool:
        """Whether the implementation has been created (its framework imported)."""
        return self._instance is not None

    @property
    def framework_importable(self) -> bool:
        """Whether the framework module (``framework_module``) can be imported here; imports nothing.

        True for a backend that names no framework module, or whose implementation is loaded.
        """
        if self._instance is not None or self.framework_module is None:
            return True
        top = self.framework_module.partition(".")[0]
        if top in sys.modules:
            return True
        try:
            return importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            return False

    def install_hint(self) -> str:
        """The sentence saying what installs this backend's framework (the core's extra for the project's own)."""
        known = known_backend(self.name)
        if known is not None and known.distribution == self.distribution:
            return f"{install_hint(known.extra)} (it brings {self.framework_module or 'the framework'} with it)"
        what = f"the framework module {self.framework_module!r}" if self.framework_module else "its framework"
        return f"Install {what}, as the documentation of {self.distribution!r} says"

    def load(self) -> Any:
        """Create (once) and return the backend implementation.

        Raises:
            BackendNotInstalledError: If the backend's framework (a module outside the plugin's own
                package) cannot be imported; the message says what to install.
            PluginError: If the plugin's own module cannot be imported (a broken installation).
        """
        if self._instance is None:
            with self._lock:
                if self._instance is None:
                    try:
                        factory = load_object(self.loader) if isinstance(self.loader, str) else self.loader
                        self._instance = factory()
                    except ImportError as exc:
                        raise self._import_error(exc) from exc
        return self._instance

    def _import_error(self, exc: ImportError) -> Exception:
        own = self.loader.partition(":")[0].partition(".")[0] if isinstance(self.loader, str) else None
        missing = (exc.name or "").partition(".")[0]
        if isinstance(exc, ModuleNotFoundError) and missing and missing != own:
            return BackendNotInstalledError(
                f"The {self.name!r} backend is registered by {self.distribution!r}, but its framework is not "
                f"installed: importing it failed with {type(exc).__name__}: {exc}. {self.install_hint()}."
            )
        return PluginError(
            f"Backend {self.name!r} (from distribution {self.distribution!r}) could not be imported: {exc}. "
            f"Reinstall it with 'pip install --force-reinstall {self.distribution}'."
        )


class Registry:
    """The entries of one kind, contributed by all plugins.

    Backend-scoped registries (models, losses, optimizers) key entries by ``(backend, name)``;
    pass ``backend=`` to :meth:`get`. Lookups try the exact name first, then a unique
    case-insensitive match.
    """

    def __init__(self, kind: str, *, missing_hint: Callable[[str, str | None], str] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"Unknown registry kind {kind!r}; expected one of {list(KINDS)}.")
        self.kind = kind
        self.scoped = kind in BACKEND_SCOPED_KINDS
        self._entries: dict[tuple[str | None, str], Entry] = {}
        self._missing_hint = missing_hint

    def _add(self, entry: Entry) -> None:
        existing = self._entries.get(entry.key)
        if existing is not None:
            where = f" for backend {entry.backend!r}" if entry.backend else ""
            raise conflict_error(f"{self.kind[:-1]} name {entry.name!r}{where}", existing, entry)
        self._entries[entry.key] = entry

    def entry(self, name: str, *, backend: str | None = None) -> Entry:
        """Return the :class:`Entry` registered under ``name`` (and ``backend``).

        Raises:
            NotRegisteredError: If nothing matches; the message lists what is available.
            ValueError: If ``backend`` is missing for a backend-scoped registry.
        """
        if self.scoped and backend is None:
            raise ValueError(f"Looking up {self.kind} needs a backend: pass backend='torch' or similar.")
        if not self.scoped:
            backend = None
        found = self._entries.get((backend, name))
        if found is None and isinstance(name, str):
            folded = [e for (b, n), e in self._entries.items() if b == backend and n.lower() == name.lower()]
            if len(folded) == 1:
                found = folded[0]
        if found is None:
            available = self.names(backend=backend) if not self.scoped or backend else []
            where = f" for backend {backend!r}" if backend else ""
            message = f"No {self.kind[:-1]} named {name!r} is registered{where}. Available: {available or 'none'}."
            if self._missing_hint is not None:
                hint = self._missing_hint(name, backend)
                if hint:
                    message += " " + hint
            raise NotRegisteredError(message)
        return found

    def get(self, name: str, *, backend: str | None = None) -> Any:
        """Return the object registered under ``name`` (see :meth:`entry`); an import path is imported first.

        Raises:
            PluginError: If the registered import path cannot be imported.
        """
        return self.entry(name, backend=backend).load()

    def name_of(self, obj: Any, *, backend: str | None = None) -> str | None:
        """The name ``obj`` itself is registered under (of ``backend``'s entries, if given), or None.

        Entries registered as import paths are compared only when their module is imported
        already, so asking imports nothing.
        """
        for found in self._entries.values():
            if backend is not None and found.backend not in (None, backend):
                continue
            target = found.obj
            if isinstance(target, str):
                if target.partition(":")[0] not in sys.modules:
                    continue
                try:
                    target = load_object(target)
                except (ImportError, AttributeError):
                    continue
            if target is obj:
                return found.name
        return None

    def names(self, *, backend: str | None = None) -> list[str]:
        """Sorted registered names, limited to one backend for scoped registries if given."""
        return sorted(n for (b, n) in self._entries if backend is None or b == backend)

    def entries(self) -> list[Entry]:
        """All entries, in registration order."""
        return list(self._entries.values())

    def __contains__(self, item: object) -> bool:
        if isinstance(item, tuple):
            return item in self._entries
        return any(n == item for (_, n) in self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


class Registrar:
    """The ``register`` callable a plugin's hook receives for one registry kind.

    Contributions are collected per plugin and committed only when the plugin's hook
    returned without error, so a failing plugin leaves nothing half-registered.
    """

    def __init__(self, kind: str, plugin: str, distribution: str) -> None:
        self.kind = kind
        self.plugin = plugin
        self.distribution = distribution
        self.collected: list[Any] = []

    def __call__(self, name: str, obj: Any, *, backend: str | None = None) -> None:
        """Register ``obj`` under ``name`` (and ``backend`` for models, losses, optimizers)."""
        _check_name(self.kind, name, self.plugin)
        scoped = self.kind in BACKEND_SCOPED_KINDS
        if scoped and not backend:
            raise PluginError(
                f"Plugin {self.plugin!r} registered {self.kind[:-1]} {name!r} without a backend; "
                f"{self.kind} are keyed by (backend, name): call register({name!r}, obj, backend='...')."
            )
        if not scoped and backend is not None:
            raise PluginError(
                f"Plugin {self.plugin!r} passed backend={backend!r} for {self.kind[:-1]} {name!r}, "
                f"but {self.kind} are not backend-scoped; drop the backend argument."
            )
        if obj is None:
            raise PluginError(f"Plugin {self.plugin!r} registered {self.kind[:-1]} {name!r} as None.")
        self.collected.append(Entry(self.kind, name, obj, backend, self.plugin, self.distribution))


class BackendRegistrar(Registrar):
    """The ``register`` callable of :func:`~modularml.plugins.hookspecs.register_backends`."""

    def __call__(  # type: ignore[override]
        self,
        name: str,
        loader: str | Callable[[], Any],
        *,
        aliases: tuple[str, ...] | list[str] = (),
        formats: tuple[str, ...] | list[str] = (),
        framework_module: str | None = None,
        description: str = "",
    ) -> None:
        """Register a backend; see the hook's documentation for the arguments."""
        _check_name(self.kind, name, self.plugin)
        for alias in aliases:
            _check_name(self.kind, alias, self.plugin)
        if not (isinstance(loader, str) or callable(loader)):
            raise PluginError(
                f"Plugin {self.plugin!r} registered backend {name!r} with loader {loader!r}; "
                "expected 'module:attribute' or a zero-argument callable."
            )
        self.collected.append(
            BackendInfo(
                name=name.lower(),
                loader=loader,
                aliases=tuple(a.lower() for a in aliases),
                formats=tuple(formats),
                framework_module=framework_module,
                description=description,
                plugin=self.plugin,
                distribution=self.distribution,
            )
        )
