"""Losses: the backend-neutral :class:`Loss` wrapper and :class:`AppliedLoss` (a loss bound to a node)."""

from modularml.losses.applied_loss import AppliedLoss
from modularml.losses.loss import Loss

__all__ = ["AppliedLoss", "Loss"]
