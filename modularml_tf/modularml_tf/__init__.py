"""The TensorFlow backend of ModularML, registered through the ``modularml`` entry point.

Importing this package does not import TensorFlow: the public names below load on first access.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "2.0.0"

# TensorFlow reads this when its C++ runtime loads, whichever module of this package imports it
# first: hide its INFO and WARNING lines unless the user asked for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_LAZY = {
    "TensorflowBackend": "modularml_tf.backend",
    "TensorflowBaseModel": "modularml_tf.models",
    "TensorflowModelWrapper": "modularml_tf.models",
    "SequentialMLP": "modularml_tf.models",
    "SequentialCNN": "modularml_tf.models",
    "SequentialRNN": "modularml_tf.models",
}

__all__ = [
    "SequentialCNN",
    "SequentialMLP",
    "SequentialRNN",
    "TensorflowBackend",
    "TensorflowBaseModel",
    "TensorflowModelWrapper",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modularml_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
