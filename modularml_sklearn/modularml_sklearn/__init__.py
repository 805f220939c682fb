"""The scikit-learn backend of ModularML, registered through the ``modularml`` entry point.

Importing this package does not import scikit-learn: the public names below load on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.0.0"

_LAZY = {
    "ScikitBackend": "modularml_sklearn.backend",
    "ScikitModelWrapper": "modularml_sklearn.models",
}

__all__ = ["ScikitBackend", "ScikitModelWrapper"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modularml_sklearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
