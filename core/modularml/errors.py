"""The ModularML exception hierarchy.

Every error raised by ModularML derives from :class:`ModularMLError`. Subclasses also
inherit the built-in exception that the API reference names (``ValueError``,
``TypeError``, ``KeyError``, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BackendNotInstalledError",
    "BackendNotSupportedError",
    "DeviceError",
    "ModularMLError",
    "NotRegisteredError",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
]


class ModularMLError(Exception):
    """Base class of every exception raised by ModularML."""


class PluginError(ModularMLError, RuntimeError):
    """A plugin misbehaved: a bad registration, or a failure inside a hook."""


class PluginConflictError(PluginError):
    """Two plugins contributed the same name to the same registry."""


class PluginLoadError(PluginError, ImportError):
    """A component was requested from a plugin that failed to load."""


class NotRegisteredError(ModularMLError, KeyError):
    """A name was looked up in a registry that has no entry for it."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class BackendNotSupportedError(ModularMLError, ValueError):
    """A backend name is unknown, or a backend cannot do what was asked."""


class BackendNotInstalledError(BackendNotSupportedError, ImportError):
    """A known backend was requested but its distribution is not installed."""


class DeviceError(ModularMLError, ValueError):
    """A device string is malformed or names a device that is not available."""
