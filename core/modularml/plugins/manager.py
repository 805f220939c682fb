"""Discovery of plugins through entry points, and the registries they fill.

One :class:`PluginManager` serves a process. It registers the core's built-in plugin, then,
the first time anything is looked up, loads every entry point of the group ``modularml``
(once), calls the hooks, and builds one :class:`~modularml.plugins.registry.Registry` per
extension point. A plugin that fails to import or raises inside a hook is recorded, not
fatal: ``modularml plugins`` shows it, and lookups that might have needed it say so.

The environment variable ``MODULARML_LOAD_PLUGINS`` limits what is loaded: a comma-separated
list of entry-point or distribution names (an empty value loads no third-party plugin).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import pluggy

from modularml.errors import BackendNotInstalledError, BackendNotSupportedError, PluginError
from modularml.plugins import hookspecs
from modularml.plugins.known import KNOWN_BACKENDS, KNOWN_COMPONENTS, install_hint, known_backend
from modularml.plugins.registry import (
    KINDS,
    BackendInfo,
    BackendRegistrar,
    Entry,
    Registrar,
    Registry,
    conflict_error,
)

__all__ = [
    "LOAD_PLUGINS_ENV",
    "PluginManager",
    "PluginRecord",
    "get_plugin_manager",
    "use_plugin_manager",
]

logger = logging.getLogger("modularml.plugins")

LOAD_PLUGINS_ENV = "MODULARML_LOAD_PLUGINS"
BUILTIN_PLUGIN = "modularml"

PluginStatus = Literal["loaded", "failed", "disabled"]


@dataclass
class PluginRecord:
    """What is known about one plugin: where it comes from, whether it loaded, what it adds.

    Attributes:
        name: Entry-point name (``"modularml"`` for the core's built-ins).
        distribution: Name of the distribution that declares it.
        version: That distribution's version, if known.
        module: What the entry point points at (``"modularml_torch.plugin"``).
        status: ``"loaded"``, ``"failed"`` (see ``error``) or ``"disabled"`` (filtered out by
            ``MODULARML_LOAD_PLUGINS``).
        error: ``"ExceptionType: message"`` for a failed plugin, else ``None``.
        contributions: Registry kind -> names this plugin contributed.
    """

    name: str
    distribution: str
    version: str | None
    module: str
    status: PluginStatus = "loaded"
    error: str | None = None
    contributions: dict[str, list[str]] = field(default_factory=dict)
    plugin: Any = field(default=None, repr=False)


def _distribution_version(distribution: str) -> str | None:
    import importlib.metadata  # ~60 ms: imported when plugins are first looked up, not by `import modularml`

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _load_filter() -> set[str] | None:
    raw = os.environ.get(LOAD_PLUGINS_ENV)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginManager:
    """Finds plugins, calls their hooks, and owns the registries they fill.

    Args:
        discover: Load entry points of the group ``modularml`` (on first use).
        builtins: Register the core's built-in plugin (its scalers, splitters, executors...).
    """

    def __init__(self, *, discover: bool = True, builtins: bool = True) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._records: dict[str, PluginRecord] = {}
        self._lock = threading.RLock()
        self._discovered = not discover
        self._registries: dict[str, Registry] | None = None
        self._backends: dict[str, BackendInfo] = {}
        self._backend_names: dict[str, str] = {}
        self._discovering = False  # while True, a plugin that does not match the specs is recorded, not raised
        if builtins:
            from modularml.plugins import builtins as builtin_plugin

            self.register(builtin_plugin, name=BUILTIN_PLUGIN, distribution="modularml")

    # ------------------------------------------------------------------ registration
    def register(
        self,
        plugin: ModuleType | object,
        *,
        name: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register a plugin object directly (tests, notebooks, applications).

        Args:
            plugin: A module or object with :data:`~modularml.plugins.hookspecs.hookimpl` functions.
            name: Plugin name; defaults to the module's or class's name.
            distribution: Distribution reported in errors and listings; defaults to ``name``.
            version: Version reported by ``modularml plugins``.

        Returns:
            The name the plugin was registered under.

        Raises:
            PluginError: If the name is taken or the hooks do not match the specifications.
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        with self._lock:
            if name in self._records:
                raise PluginError(f"A plugin named {name!r} is already registered; pick another name.")
            record = PluginRecord(
                name=name,
                distribution=distribution or name,
                version=version if version is not None else _distribution_version(distribution or name),
                module=getattr(plugin, "__name__", type(plugin).__qualname__),
                plugin=plugin,
            )
            try:
                self._pm.register(plugin, name=name)
                self._check_hook_names(plugin, name)
            except Exception as exc:
                with contextlib.suppress(ValueError):
                    self._pm.unregister(name=name)
                if not self._discovering:
                    raise PluginError(f"Plugin {name!r} does not match the hook specifications: {exc}") from exc
                record.status, record.error, record.plugin = "failed", f"{type(exc).__name__}: {exc}", None
            self._records[name] = record
            self._registries = None
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``; registries are rebuilt on next use."""
        with self._lock:
            record = self._records.pop(name, None)
            if record is None:
                raise PluginError(f"No plugin named {name!r} is registered; known: {sorted(self._records)}.")
            if self._pm.has_plugin(name):
                self._pm.unregister(name=name)
            self._registries = None

    def _check_hook_names(self, plugin: object, name: str) -> None:
        known = {spec for spec in dir(hookspecs) if spec.startswith("register_")}
        marker = f"{hookspecs.PROJECT_NAME}_impl"
        for attr in dir(plugin):
            if attr not in known and hasattr(getattr(plugin, attr, None), marker):
                raise PluginError(f"Plugin {name!r} implements unknown hook {attr!r}; known hooks: {sorted(known)}.")

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        allowed = _load_filter()
        import importlib.metadata

        entry_points = sorted(importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda ep: ep.name)
        self._discovering = True
        try:
            for ep in entry_points:
                dist = ep.dist
                dist_name = dist.metadata["Name"] if dist is not None else ep.value.split(".")[0]
                version = dist.version if dist is not None else None
                if ep.name in self._records:
                    logger.debug("Entry point %s skipped: a plugin of that name is registered", ep.name)
                    continue
                if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                    self._records[ep.name] = PluginRecord(
                        ep.name, dist_name, version, ep.value, status="disabled", error=f"not in {LOAD_PLUGINS_ENV}"
                    )
                    continue
                try:
                    plugin = ep.load()
                except Exception as exc:  # a broken plugin must not break the core
                    logger.warning("Plugin %r from %r failed to load: %s", ep.name, dist_name, exc)
                    self._records[ep.name] = PluginRecord(
                        ep.name, dist_name, version, ep.value, status="failed", error=f"{type(exc).__name__}: {exc}"
                    )
                    continue
                self.register(plugin, name=ep.name, distribution=dist_name, version=version)
        finally:
            self._discovering = False

    # ------------------------------------------------------------------ building
    def _call_hooks(self, record: PluginRecord) -> dict[str, list[Any]]:
        collected: dict[str, list[Any]] = {}
        for kind in KINDS:
            hook = getattr(self._pm.hook, f"register_{kind}")
            registrar_cls = BackendRegistrar if kind == "backends" else Registrar
            for impl in hook.get_hookimpls():
                if impl.plugin is not record.plugin:
                    continue
                registrar = registrar_cls(kind, record.name, record.distribution)
                kwargs = {"register": registrar} if "register" in impl.argnames else {}
                impl.function(**kwargs)
                collected.setdefault(kind, []).extend(registrar.collected)
        return collected

    def _build(self) -> dict[str, Registry]:
        registries = self._registries
        if registries is not None:  # built: no lock needed to read it (hot path: every backend lookup)
            return registries
        with self._lock:
            if self._registries is not None:
                return self._registries
            self._discover()
            contributions: list[tuple[PluginRecord, dict[str, list[Any]]]] = []
            for record in self._records.values():
                if record.plugin is None:  # failed to import, or disabled
                    continue
                try:
                    contributions.append((record, self._call_hooks(record)))
                    record.status, record.error = "loaded", None
                except Exception as exc:
                    logger.warning("Plugin %r raised inside a hook: %s", record.name, exc)
                    record.status, record.error = "failed", f"{type(exc).__name__} in a hook: {exc}"

            backends: dict[str, BackendInfo] = {}
            names: dict[str, str] = {}
            registries = {kind: Registry(kind, missing_hint=self._missing_hint(kind)) for kind in KINDS}
            for record, collected in contributions:
                record.contributions = {}
                for info in collected.get("backends", []):
                    for alias in (info.name, *info.aliases):
                        if alias in names:
                            raise conflict_error(f"backend name {alias!r}", backends[names[alias]], info)
                        names[alias] = info.name
                    backends[info.name] = info
                    record.contributions.setdefault("backends", []).append(info.name)
            for record, collected in contributions:
                for kind in KINDS[1:]:
                    for entry in collected.get(kind, []):
                        if entry.backend is not None:
                            canonical = names.get(entry.backend.lower())
                            if canonical is None:
                                known = known_backend(entry.backend)
                                canonical = known.name if known else entry.backend.lower()
                            entry = Entry(
                                entry.kind, entry.name, entry.obj, canonical, entry.plugin, entry.distribution
                            )
                        registries[kind]._add(entry)
                        label = f"{entry.backend}:{entry.name}" if entry.backend else entry.name
                        record.contributions.setdefault(kind, []).append(label)
            self._backends, self._backend_names = backends, names
            self._registries = registries
            return registries

    def _missing_hint(self, kind: str):
        def hint(name: str, backend: str | None) -> str:
            parts = []
            extra = KNOWN_COMPONENTS.get((kind, name))
            if extra is None and backend is not None and backend not in self._backends:
                known = known_backend(backend)
                extra = known.extra if known else None
            if extra is not None:
                parts.append(install_hint(extra) + ".")
            failed = self._failure_summary()
            if failed:
                parts.append(f"Some plugins failed to load and may have provided it: {failed}.")
            return " ".join(parts)

        return hint

    def _failure_summary(self) -> str:
        return "; ".join(
            f"{r.name} ({r.distribution}): {r.error}" for r in self._records.values() if r.status == "failed"
        )

    # ------------------------------------------------------------------ queries
    @property
    def built_registries(self) -> dict[str, Registry] | None:
        """The registries as built now, without building them (``None`` before the first lookup or after a change).

        The object is replaced whenever the registries are rebuilt, so a cache of looked-up
        components can key on its identity (:func:`modularml.backends.get_backend` does).
        """
        return self._registries

    def registry(self, kind: str) -> Registry:
        """The registry of one extension point (``"scalers"``, ``"models"``, ...)."""
        registries = self._build()
        if kind not in registries:
            raise ValueError(f"Unknown registry kind {kind!r}; expected one of {list(KINDS)}.")
        return registries[kind]

    def plugins(self) -> list[PluginRecord]:
        """Every plugin known: built-in, loaded, failed and disabled, in load order."""
        self._build()
        return list(self._records.values())

    def failures(self) -> list[PluginRecord]:
        """The plugins that failed to import or raised inside a hook."""
        return [r for r in self.plugins() if r.status == "failed"]

    def backends(self) -> dict[str, BackendInfo]:
        """Installed backends by canonical name."""
        self._build()
        return dict(self._backends)

    def canonical_backend_name(self, name: str) -> str | None:
        """The canonical name of an installed backend called ``name`` or an alias of it."""
        self._build()
        return self._backend_names.get(name.lower())

    def backend_info(self, name: str) -> BackendInfo:
        """The :class:`BackendInfo` of an installed backend, by name or alias.

        Raises:
            BackendNotInstalledError: If it is a known backend whose distribution is missing.
            BackendNotSupportedError: If no installed plugin and no known distribution has it.
        """
        canonical = self.canonical_backend_name(name)
        if canonical is not None:
            return self._backends[canonical]
        known = known_backend(name)
        failed = self._failure_summary()
        failed_note = f" Plugins that failed to load: {failed}." if failed else ""
        if known is not None:
            raise BackendNotInstalledError(
                f"The {known.name!r} backend is not installed (distribution {known.distribution!r}). "
                f"{install_hint(known.extra)}.{failed_note}"
            )
        usable = sorted(n for n, info in self._backends.items() if info.framework_importable)
        unusable = [info for n, info in sorted(self._backends.items()) if not info.framework_importable]
        names = sorted({*self._backend_names, *(a for b in KNOWN_BACKENDS.values() for a in (b.name, *b.aliases))})
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.7)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        unusable_note = "".join(
            f" Backend {info.name!r} is registered but its framework {info.framework_module!r} is not importable: "
            f"{info.install_hint()}."
            for info in unusable
        )
        raise BackendNotSupportedError(
            f"Unknown backend {name!r}.{suggestion} Installed backends: {usable or 'none'}; the project's own are "
            f'{sorted(KNOWN_BACKENDS)} (pip install "modularml[torch]", "modularml[tf]", '
            f'"modularml[sklearn]"); a third-party backend is available once its distribution is installed.'
            f"{unusable_note}{failed_note}"
        )

    def unusable_backends(self) -> list[BackendInfo]:
        """Registered backends whose framework cannot be imported here (their plugin loaded; using them fails)."""
        return [info for _, info in sorted(self.backends().items()) if not info.framework_importable]


_scoped_manager: contextvars.ContextVar[PluginManager | None] = contextvars.ContextVar(
    "modularml_plugin_manager", default=None
)


@functools.cache
def _default_manager() -> PluginManager:
    return PluginManager()


def get_plugin_manager() -> PluginManager:
    """The plugin manager in use: the one set by :func:`use_plugin_manager`, else the process-wide one."""
    return _scoped_manager.get() or _default_manager()


@contextlib.contextmanager
def use_plugin_manager(manager: PluginManager) -> Iterator[PluginManager]:
    """Use ``manager`` instead of the process-wide one inside the ``with`` block (tests, sandboxes)."""
    token = _scoped_manager.set(manager)
    try:
        yield manager
    finally:
        _scoped_manager.reset(token)
