"""The :class:`Backend` name type and access to backend implementations."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

import numpy as np

from modularml.errors import BackendNotSupportedError, ModularMLError
from modularml.plugins.known import known_backend
from modularml.plugins.manager import get_plugin_manager
from modularml.plugins.registry import BackendInfo

__all__ = [
    "Backend",
    "backend_for_format",
    "backend_knows",
    "backend_of",
    "get_backend",
    "not_trainable_message",
    "trainable_backends",
]


class Backend(str):
    """The name of an execution backend, resolved through the plugin registry.

    ``Backend`` behaves like the enum of the API reference (``Backend.TORCH``,
    ``Backend.TENSORFLOW``, ``Backend.SCIKIT``, with ``.name`` and ``.value``) but is open:
    backends contributed by third-party plugins are valid too. It is a ``str`` subclass, so
    it compares equal to its canonical name and serializes as one.

    ``Backend(value)`` accepts a ``Backend``, a canonical name or an alias, in any case
    (``"torch"``/``"pytorch"``, ``"tensorflow"``/``"tf"``, ``"scikit"``/``"sklearn"``).
    Naming one of the project's own backends always works, installed or not; using it
    (:attr:`implementation`) needs its distribution and otherwise raises
    :class:`~modularml.errors.BackendNotInstalledError` saying what to ``pip install``.

    Raises:
        BackendNotSupportedError: If the name is neither a project backend nor one
            contributed by an installed plugin.
    """

    TORCH: ClassVar[Backend]
    TENSORFLOW: ClassVar[Backend]
    SCIKIT: ClassVar[Backend]

    __slots__ = ()

    def __new__(cls, value: str | Backend) -> Backend:
        if isinstance(value, Backend):
            return value
        raw = getattr(value, "value", value)  # tolerate enum members of older code
        if not isinstance(raw, str):
            raise BackendNotSupportedError(
                f"A backend is named by a string such as 'torch', 'tensorflow' or 'scikit'; got {value!r}."
            )
        known = known_backend(raw)
        if known is not None:
            return str.__new__(cls, known.name)
        canonical = get_plugin_manager().canonical_backend_name(raw)
        if canonical is None:
            get_plugin_manager().backend_info(raw)  # raises the explanatory error
        return str.__new__(cls, canonical)

    @property
    def value(self) -> str:
        """The canonical name (``"torch"``)."""
        return str(self)

    @property
    def name(self) -> str:  # type: ignore[override]
        """The enum-style name (``"TORCH"``)."""
        return str(self).upper()

    @property
    def is_installed(self) -> bool:
        """Whether a plugin providing this backend is installed and loaded, and its framework can be imported."""
        manager = get_plugin_manager()
        canonical = manager.canonical_backend_name(self)
        return canonical is not None and manager.backends()[canonical].framework_importable

    @property
    def info(self) -> BackendInfo:
        """Registration details (distribution, aliases, formats) of the installed backend."""
        return get_plugin_manager().backend_info(self)

    @property
    def implementation(self) -> Any:
        """The backend object (see :class:`~modularml.backends.BackendProtocol`), created on first use."""
        return self.info.load()

    @classmethod
    def installed(cls) -> list[Backend]:
        """Every installed backend whose framework can be imported, sorted by name.

        A backend whose plugin is installed without its framework (``modularml-tf`` without
        tensorflow) is left out; ``modularml plugins`` lists it with what to install.
        """
        backends = get_plugin_manager().backends()
        return [str.__new__(cls, name) for name in sorted(backends) if backends[name].framework_importable]

    def __repr__(self) -> str:
        return f"<Backend.{self.name}: {str(self)!r}>"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Backend, (str(self),))


Backend.TORCH = str.__new__(Backend, "torch")
Backend.TENSORFLOW = str.__new__(Backend, "tensorflow")
Backend.SCIKIT = str.__new__(Backend, "scikit")


#: Implementations already looked up, by the name asked for; valid while the plugin manager and its
#: registries are the ones recorded in ``_IMPL_OWNER`` (a reload or reset of plugins starts afresh).
_IMPLS: dict[str, Any] = {}
_IMPL_OWNER: list[Any] = [None, None]


def get_backend(backend: str | Backend) -> Any:
    """Return the implementation of a backend by name or alias, creating it on first use.

    Raises:
        BackendNotInstalledError: If it is one of the project's backends and not installed.
        BackendNotSupportedError: If no installed plugin provides it.
    """
    manager = get_plugin_manager()
    registries = manager.built_registries
    cacheable = registries is not None and type(backend) in (str, Backend)
    if cacheable:
        if _IMPL_OWNER[0] is manager and _IMPL_OWNER[1] is registries:
            impl = _IMPLS.get(backend)
            if impl is not None:
                return impl
        else:
            _IMPLS.clear()
            _IMPL_OWNER[:] = [manager, registries]
    impl = Backend(backend).implementation
    if cacheable and manager.built_registries is registries:
        _IMPLS[str(backend)] = impl
    return impl


def trainable_backends() -> list[Backend]:
    """The installed backends whose models learn by gradient steps (``trainable``), sorted by name.

    Asking creates each installed backend's implementation, which imports its framework: for
    error messages, not for a hot path.
    """
    found = []
    for backend in Backend.installed():
        try:
            if getattr(backend.implementation, "trainable", False):
                found.append(backend)
        except ModularMLError:  # a backend that cannot be created trains nothing here
            continue
    return found


def not_trainable_message(backend: str, what: str) -> str:
    """The sentence for a backend that cannot do ``what`` (train with losses...), naming the ones that can."""
    usable = [str(b) for b in trainable_backends()]
    instead = (
        f"use one of the trainable backends installed here: {usable}"
        if usable
        else 'no trainable backend is installed here: pip install "modularml[torch]"'
    )
    return f"The {str(backend)!r} backend does not {what}; {instead}."


def backend_of(value: Any) -> Backend | None:
    """The backend whose native tensor ``value`` is, or ``None`` (numpy arrays, plain Python).

    Only backends whose framework module is already imported are asked, so this never
    imports a framework. numpy arrays belong to the core, not to a backend.
    """
    if isinstance(value, (np.ndarray, np.generic)):
        return None
    for name, info in get_plugin_manager().backends().items():
        if info.framework_module is not None and info.framework_module not in sys.modules:
            continue
        if info.framework_module is None and not info.is_loaded:
            continue
        if info.load().is_native(value):
            return str.__new__(Backend, name)
    return None


def backend_for_format(fmt: str) -> Backend | None:
    """The installed backend whose data format is ``fmt`` (``"torch"``, ``"tf"``), or ``None``.

    A backend's name and aliases count as formats too, so ``fmt="tensorflow"`` works.
    """
    key = fmt.lower()
    for name, info in get_plugin_manager().backends().items():
        if key == name or key in info.aliases or key in (f.lower() for f in info.formats):
            return str.__new__(Backend, name)
    return None


def backend_knows(method: str, backend: str | Backend | None, obj: Any) -> bool:
    """Whether ``backend`` finds ``obj`` by its own name through ``method`` (``"resolve_loss"``...).

    The check the file resolver makes before using a loss or optimizer class that a file names:
    a class the backend itself would pick for its name is one of the backend's own.
    """
    name = getattr(obj, "__name__", None)
    if backend is None or not isinstance(name, str):
        return False
    try:
        return getattr(get_backend(backend), method)(name) is obj
    except (AttributeError, KeyError, ValueError, TypeError):
        return False
