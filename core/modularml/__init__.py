"""ModularML: modular, reproducible ML experiments across PyTorch, TensorFlow and scikit-learn.

Use it as ``import modularml as mml``. The core knows no ML framework; backends are
separately installed plugins (``pip install "modularml[torch]"``) found through entry points.
"""

from modularml._version import __version__
from modularml.backends import Backend, BackendProtocol, backend_of, get_backend
from modularml.context import ExperimentContext, ExperimentNode, RegistrationPolicy
from modularml.errors import (
    BackendNotInstalledError,
    BackendNotSupportedError,
    DeviceError,
    ModularMLError,
    NotRegisteredError,
    PluginConflictError,
    PluginError,
)
from modularml.plugins import get_plugin_manager, hookimpl

__all__ = [
    "Backend",
    "BackendNotInstalledError",
    "BackendNotSupportedError",
    "BackendProtocol",
    "DeviceError",
    "ExperimentContext",
    "ExperimentNode",
    "ModularMLError",
    "NotRegisteredError",
    "PluginConflictError",
    "PluginError",
    "RegistrationPolicy",
    "__version__",
    "backend_of",
    "get_backend",
    "get_plugin_manager",
    "hookimpl",
]
