"""``Callback``: hooks a phase runs at phase, epoch and batch boundaries, and ``CallbackResult``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.results.phase_results import PhaseResults

__all__ = ["Callback", "CallbackResult"]


@dataclass(frozen=True)
class CallbackResult:
    """What a callback hook returned, stored in the phase results.

    Attributes:
        kind (str): The callback's kind (e.g. ``"evaluation"``).
        label (str): The callback's label.
        epoch_idx (int | None): Epoch of the hook (None at phase level).
        batch_idx (int | None): Batch of the hook (None at epoch or phase level).
        value (Any): The payload.
    """

    kind: str
    label: str
    epoch_idx: int | None = None
    batch_idx: int | None = None
    value: Any = None


class Callback:
    """Base of phase callbacks: override the hooks you need; each may return a :class:`CallbackResult`.

    Hooks run in ascending :attr:`execution_order` (ties keep the order callbacks were added).
    A returned :class:`CallbackResult` is stored in the phase's results.

    Args:
        label (str | None): Name of this callback; the class name by default.
        execution_order (int): Sort key among a phase's callbacks. Defaults to 0.
    """

    #: The kind recorded with this callback's results.
    kind: str = "callback"

    def __init__(self, label: str | None = None, *, execution_order: int = 0) -> None:
        self.label = label or type(self).__name__
        self.execution_order = int(execution_order)

    def on_phase_start(self, phase: Any, results: PhaseResults | None) -> CallbackResult | None:
        """Called once before the first step of ``phase``."""
        return None

    def on_phase_end(self, phase: Any, results: PhaseResults | None) -> CallbackResult | None:
        """Called once after the last step of ``phase`` (also after an early stop)."""
        return None

    def on_epoch_start(self, phase: Any, epoch_idx: int, results: PhaseResults | None) -> CallbackResult | None:
        """Called before the first step of each epoch."""
        return None

    def on_epoch_end(self, phase: Any, epoch_idx: int, results: PhaseResults | None) -> CallbackResult | None:
        """Called after the last step of each epoch."""
        return None

    def on_batch_start(self, phase: Any, ctx: ExecutionContext, results: PhaseResults | None) -> CallbackResult | None:
        """Called before the graph executes step ``ctx`` (its inputs are set, outputs empty)."""
        return None

    def on_batch_end(self, phase: Any, ctx: ExecutionContext, results: PhaseResults | None) -> CallbackResult | None:
        """Called after the graph executed step ``ctx`` (outputs and losses are filled in)."""
        return None

    def on_exception(self, phase: Any, exception: BaseException, results: PhaseResults | None) -> CallbackResult | None:
        """Called when the phase fails; the exception is re-raised afterwards."""
        return None

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this callback (subclasses add their arguments)."""
        return {"label": self.label, "execution_order": self.execution_order}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r})"
