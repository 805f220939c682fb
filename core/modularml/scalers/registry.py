"""The scaler registry as users see it: names contributed through the ``register_scalers`` hook.

A plugin may register a scaler as a class, or as an import path (``"package.module:Class"``) so
that its framework is imported only when the scaler is used. :data:`supported_scalers` and
:meth:`Scaler.get_supported_scalers <modularml.scalers.Scaler.get_supported_scalers>` show an
import path as a :class:`LazyClass`, which imports nothing until it is called or resolved.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

from modularml.errors import InvalidArgumentError, NotRegisteredError
from modularml.plugins.registry import Entry, load_object

__all__ = ["LazyClass", "registered_name", "resolve_registered_scaler", "supported_scalers"]


class LazyClass:
    """A class named by its import path, imported the first time it is needed.

    Calling it constructs an instance, like calling the class. Its ``repr`` is the dotted path
    (``sklearn.preprocessing.StandardScaler``).

    Args:
        path (str): ``"package.module:QualName"``.
    """

    __slots__ = ("_obj", "path")

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or path.count(":") != 1:
            raise InvalidArgumentError(f"A LazyClass needs an import path 'package.module:QualName'; got {path!r}.")
        self.path = path
        self._obj: Any = None

    @property
    def is_imported(self) -> bool:
        """Whether the module holding the class is already imported (resolving then runs no import)."""
        return self._obj is not None or self.path.partition(":")[0] in sys.modules

    def resolve(self) -> Any:
        """Import and return the class.

        Raises:
            ImportError: If its module cannot be imported.
        """
        if self._obj is None:
            self._obj = load_object(self.path)
        return self._obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyClass) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return self.path.replace(":", ".")


def _scaler_registry():
    from modularml.plugins import get_plugin_manager

    return get_plugin_manager().registry("scalers")


def _shown(entry: Entry) -> Any:
    """The registered class; an import path becomes the class if its module is imported, else a LazyClass."""
    if not isinstance(entry.obj, str):
        return entry.obj
    lazy = LazyClass(entry.obj)
    if lazy.is_imported:
        try:
            return lazy.resolve()
        except (ImportError, AttributeError):
            pass
    return lazy


def resolve_registered_scaler(name: str) -> tuple[str, Any]:
    """The canonical name and the class (or factory) registered for scaler ``name``.

    Raises:
        InvalidArgumentError: If no installed plugin registers it; for a scaler of a known
            extra the message says what to ``pip install``.
        PluginError: If the plugin registered an import path that cannot be imported.
    """
    try:
        entry = _scaler_registry().entry(name)
    except NotRegisteredError as exc:
        raise InvalidArgumentError(str(exc)) from None
    return entry.name, entry.load()


def registered_name(cls: Any) -> str | None:
    """The name a class is registered under, if any (import paths are compared only when already imported)."""
    return _scaler_registry().name_of(cls)


class _SupportedScalers(Mapping[str, Any]):
    """A live, read-only view of the scaler registry: name -> class (or :class:`LazyClass`)."""

    def _current(self) -> dict[str, Any]:
        registry = _scaler_registry()
        return {entry.name: _shown(entry) for entry in sorted(registry, key=lambda e: e.name)}

    def __getitem__(self, name: str) -> Any:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return repr(self._current())


#: Every registered scaler: name -> class, or :class:`LazyClass` for a class not yet imported.
#: The mapping is live: it reflects the plugins installed (and the plugin manager in use).
supported_scalers: Mapping[str, Any] = _SupportedScalers()
