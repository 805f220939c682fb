"""The PyTorch backend of ModularML, registered through the ``modularml`` entry point.

Importing this package does not import torch: the public names below load on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.0.0"

_LAZY = {
    "TorchBackend": "modularml_torch.backend",
    "TorchBaseModel": "modularml_torch.models",
    "TorchModelWrapper": "modularml_torch.models",
    "SequentialMLP": "modularml_torch.models",
    "SequentialCNN": "modularml_torch.models",
    "SequentialRNN": "modularml_torch.models",
}

__all__ = ["SequentialCNN", "SequentialMLP", "SequentialRNN", "TorchBackend", "TorchBaseModel", "TorchModelWrapper"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modularml_torch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
