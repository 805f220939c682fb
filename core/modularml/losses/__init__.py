"""Losses: the backend-neutral :class:`Loss` wrapper."""

from modularml.losses.loss import Loss

__all__ = ["Loss"]
