"""Optimizers: the backend-neutral :class:`Optimizer` wrapper."""

from modularml.optimizers.optimizer import Optimizer

__all__ = ["Optimizer"]
