"""``Callback``: the hooks a phase runs at phase, epoch and batch boundaries.

The interface lives with the phases that call it; the concrete callbacks (early stopping,
evaluation, metrics) are in :mod:`modularml.callbacks`, a layer above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.results.callback_result import CallbackResult

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.results.phase_results import PhaseResults

__all__ = ["Callback", "CallbackResult", "RunNote"]


@dataclass(frozen=True)
class RunNote:
    """What a callback adds to the summary of a phase's run (see :meth:`Callback.run_note`).

    Attributes:
        text (str): One sentence, e.g. ``"EarlyStopping: val_loss did not improve for 5 epochs"``.
        stopped (bool): Whether this callback stopped the phase early.
        restored_epoch (int | None): Index of the epoch whose state the callback restored, if any.
    """

    text: str
    stopped: bool = False
    restored_epoch: int | None = None


class Callback:
    """Base of phase callbacks: override the hooks you need; each may return a :class:`CallbackResult`.

    Every hook takes keyword arguments only: ``experiment`` (the Experiment of the active
    context, or None when a phase runs on its own), ``phase`` (the running phase), ``results``
    (the phase's results container, or None when the phase runs without one) and, for epoch and
    batch hooks, ``exec_ctx``. Hooks run in ascending :attr:`execution_order` (ties keep the order
    callbacks were added). A returned :class:`CallbackResult` is stored in the phase's results; any
    other non-None value is wrapped in one (with this callback's :attr:`kind` and label).

    Args:
        label (str | None): Name of this callback; the class name by default.
        execution_order (int): Sort key among a phase's callbacks; higher runs later. Defaults to 0.

    Raises:
        TypeError: If ``label`` is not a string or ``execution_order`` not an int.
    """

    #: The kind recorded with this callback's results.
    kind: str = "callback"

    def __init__(self, label: str | None = None, *, execution_order: int = 0) -> None:
        if label is not None and (not isinstance(label, str) or not label):
            raise InvalidTypeError(f"A callback label is a non-empty string or None; got {label!r}.")
        if isinstance(execution_order, bool) or not isinstance(execution_order, int):
            raise InvalidTypeError(f"execution_order is an int; got {execution_order!r}.")
        self.label = label or type(self).__name__
        self.execution_order = execution_order

    # ------------------------------------------------------------------ hooks
    def on_phase_start(
        self, *, experiment: Any, phase: Any, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called once before the first step of ``phase``."""
        return None

    def on_phase_end(
        self, *, experiment: Any, phase: Any, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called once after the last step of ``phase`` (also after an early stop)."""
        return None

    def on_epoch_start(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called before the first step of each epoch; ``exec_ctx`` is an empty context of that epoch (batch 0)."""
        return None

    def on_epoch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called after the last step of each epoch; ``exec_ctx`` is that last step (outputs and losses filled in)."""
        return None

    def on_batch_start(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called before the graph executes step ``exec_ctx`` (its inputs are set, outputs empty)."""
        return None

    def on_batch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called after the graph executed step ``exec_ctx`` (outputs and losses are filled in)."""
        return None

    def on_exception(
        self, *, experiment: Any, phase: Any, exception: BaseException, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Called when the phase fails; the exception is re-raised afterwards."""
        return None

    # ------------------------------------------------------------------ capabilities
    def retained_epochs(self) -> set[int]:
        """Epochs whose execution contexts this callback needs the phase results to keep.

        A phase that records only its last epoch (``result_recording="last"``) keeps these too.
        The default is none; ``EarlyStopping(restore_best=True)`` asks for its best epoch.
        """
        return set()

    # ------------------------------------------------------------------ run state
    def get_state(self) -> dict[str, Any]:
        """What this callback learned during the current run (counters, best values), as plain data.

        A resumable checkpoint stores it; :meth:`set_state` puts it back when the run resumes, so
        the callback decides as if the run had never stopped. JSON values and numpy arrays only.
        The default, for callbacks that keep nothing between hooks, is ``{}``.
        """
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (the default accepts only ``{}``).

        Raises:
            InvalidArgumentError: If ``state`` is not this callback's.
        """
        if state:
            raise InvalidArgumentError(
                f"{type(self).__name__} {self.label!r} keeps no run state, but was given {sorted(state)!r:.120}; "
                "override get_state()/set_state() in a callback that keeps some."
            )

    def run_note(self) -> RunNote | None:
        """What the summary of the phase's last run should say about this callback (None: nothing).

        Asked once, after ``on_phase_end``. ``EarlyStopping`` says why it stopped and which
        epoch it restored.
        """
        return None

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this callback (subclasses add their arguments)."""
        return {"label": self.label, "execution_order": self.execution_order}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Callback:
        """Rebuild a callback from :meth:`get_config` output.

        Raises:
            ValueError: If ``config`` holds arguments this callback does not take.
        """
        if not isinstance(config, dict):
            raise InvalidTypeError(f"{cls.__name__}.from_config() takes a dict; got {type(config).__name__}.")
        try:
            return cls(**config)
        except TypeError as exc:
            raise InvalidArgumentError(f"Cannot rebuild {cls.__name__} from config {config!r:.200}: {exc}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r})"
