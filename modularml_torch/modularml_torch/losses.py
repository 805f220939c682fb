"""Losses of the torch backend: short names for ``torch.nn``'s loss classes, and all of them by class name.

The short names (``mse``, ``mae``, ``bce_with_logits``, ...; :data:`LOSS_NAMES`) are registered through the plugin's
``register_losses`` hook as import paths, so building the registry imports nothing; every other
``torch.nn`` loss class is found by its own name (``"PoissonNLLLoss"``, ``"poisson_nll"``).
"""

from __future__ import annotations

import torch.nn.modules.loss as _torch_losses

from modularml_torch.plugin import LOSS_NAMES

__all__ = ["LOSS_NAMES", "framework_losses"]


def framework_losses() -> dict[str, type]:
    """Every public loss class of ``torch.nn``, by class name (``"MSELoss"`` -> ``torch.nn.MSELoss``)."""
    return {
        name: getattr(_torch_losses, name)
        for name in _torch_losses.__all__
        if name.endswith("Loss") and isinstance(getattr(_torch_losses, name, None), type)
    }
