"""The plugin system: hook specifications, discovery through entry points, registries.

Plugin authors read :mod:`modularml.plugins.hookspecs` and decorate their hook functions
with :data:`hookimpl`.
"""

from modularml.plugins.hookspecs import PROJECT_NAME, hookimpl
from modularml.plugins.manager import (
    LOAD_PLUGINS_ENV,
    PluginManager,
    PluginRecord,
    get_plugin_manager,
    use_plugin_manager,
)
from modularml.plugins.registry import (
    BACKEND_SCOPED_KINDS,
    KINDS,
    BackendInfo,
    BackendRegistrar,
    Entry,
    Registrar,
    Registry,
)

__all__ = [
    "BACKEND_SCOPED_KINDS",
    "KINDS",
    "LOAD_PLUGINS_ENV",
    "PROJECT_NAME",
    "BackendInfo",
    "BackendRegistrar",
    "Entry",
    "PluginManager",
    "PluginRecord",
    "Registrar",
    "Registry",
    "get_plugin_manager",
    "hookimpl",
    "use_plugin_manager",
]
