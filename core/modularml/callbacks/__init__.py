"""Callbacks run by phases at phase, epoch and batch boundaries."""

from modularml.callbacks.base import Callback, CallbackResult

__all__ = ["Callback", "CallbackResult"]
