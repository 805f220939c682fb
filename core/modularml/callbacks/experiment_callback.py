"""``ExperimentCallback``: hooks an Experiment runs at phase and group boundaries.

The ``experiment`` each hook receives is the running :class:`~modularml.experiment.Experiment`
(typed ``Any`` here: the experiment layer sits above the callbacks).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from modularml.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from modularml.phases.base import ExperimentPhase
    from modularml.phases.phase_group import PhaseGroup
    from modularml.results.phase_group_results import PhaseGroupResults
    from modularml.results.phase_results import PhaseResults

__all__ = ["ExperimentCallback"]


class ExperimentCallback:
    """Base of experiment-level callbacks: override the hooks you need.

    :meth:`Experiment.run`, :meth:`Experiment.run_group` and :meth:`Experiment.run_phase` call
    the hooks of every registered callback, in ascending :attr:`execution_order` (ties keep the
    order callbacks were added), at these points:

    - ``on_group_start`` / ``on_group_end`` around every executed PhaseGroup (the execution plan
      itself for :meth:`Experiment.run`, and each nested group);
    - ``on_phase_start`` / ``on_phase_end`` around every executed phase;
    - ``on_exception`` once when a phase, group or hook fails; the error is re-raised afterwards
      and no ``*_end`` hook runs for the failed phase or its enclosing groups.

    Previews (:meth:`Experiment.preview_phase`, :meth:`Experiment.preview_group`) run no
    experiment callbacks. Every hook takes keyword arguments only; their return values are ignored.
    Phase-level :class:`~modularml.callbacks.Callback` objects (epoch and batch hooks) are separate.

    Args:
        label (str | None): Name of this callback; the class name by default.
        execution_order (int): Sort key among the experiment's callbacks. Defaults to 0.

    Example:
        >>> class PrintPhases(ExperimentCallback):
        ...     def on_phase_end(self, *, experiment, phase, results):
        ...         print(f"{phase.label} done: {results.n_batches} batches")
        >>> exp.add_callback(PrintPhases())
    """

    def __init__(self, label: str | None = None, *, execution_order: int = 0) -> None:
        if label is not None and (not isinstance(label, str) or not label):
            raise InvalidTypeError(f"An ExperimentCallback label is a non-empty string or None; got {label!r}.")
        if isinstance(execution_order, bool) or not isinstance(execution_order, int):
            raise InvalidTypeError(f"execution_order is an int; got {execution_order!r}.")
        self.label = label or type(self).__name__
        self.execution_order = execution_order

    # ------------------------------------------------------------------ hooks
    def on_group_start(self, *, experiment: Any, group: PhaseGroup) -> None:
        """Called before the first item of ``group`` runs."""
        return None

    def on_group_end(self, *, experiment: Any, group: PhaseGroup, results: PhaseGroupResults) -> None:
        """Called after the last item of ``group`` ran; ``results`` holds all of the group's results."""
        return None

    def on_phase_start(self, *, experiment: Any, phase: ExperimentPhase) -> None:
        """Called before ``phase`` runs."""
        return None

    def on_phase_end(self, *, experiment: Any, phase: ExperimentPhase, results: PhaseResults) -> None:
        """Called after ``phase`` ran, with its results."""
        return None

    def on_exception(
        self,
        *,
        experiment: Any,
        exception: BaseException,
        phase: ExperimentPhase | None = None,
        group: PhaseGroup | None = None,
    ) -> None:
        """Called once when execution fails; the exception is re-raised afterwards.

        Args:
            experiment: The running experiment.
            exception: The error.
            phase: The phase that was running (or whose hooks were running); None if the error came
                from a group boundary.
            group: The innermost group being executed; None for :meth:`Experiment.run_phase`.
        """
        return None

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this callback: its class, label and execution order.

        Subclasses whose constructor takes further arguments add them to this dict under the
        constructor's parameter names; :meth:`from_config` passes every key but ``"class"`` back.

        Raises:
            ValueError: If the class cannot be imported by name (a local or ``__main__``-less class).
        """
        from modularml.backends.components import import_path

        path = import_path(type(self))
        if path is None:
            raise InvalidArgumentError(
                f"{type(self).__qualname__} cannot be named in a config: define the callback class at module level "
                "so that it can be imported."
            )
        return {"class": path, "label": self.label, "execution_order": self.execution_order}

    @classmethod
    def from_config(cls, config: dict[str, Any], *, allow_packaged_code: bool = False) -> ExperimentCallback:
        """Rebuild a callback from :meth:`get_config` output.

        Args:
            config: The configuration.
            allow_packaged_code: Allow importing the callback class from a module outside
                modularml and the installed ModularML plugins (e.g. the user's own module).

        Raises:
            TypeError: If ``config`` is not a dict.
            SerializationError: If the class cannot be imported, importing it is not allowed, or it
                is not an ExperimentCallback subclass.
            ValueError: If the config's arguments do not fit the class's constructor.
        """
        from modularml.plugins.resolver import loading, resolve

        if not isinstance(config, dict) or "class" not in config:
            raise InvalidTypeError(f"An ExperimentCallback config is a dict with a 'class' entry; got {config!r:.120}.")
        with loading(allow_packaged_code=allow_packaged_code, what="experiment callback"):
            callback_cls = resolve(
                config["class"],
                what="experiment callback class",
                entry="config['class']",
                kind="callbacks",
                base=ExperimentCallback,
            )
        kwargs = {k: v for k, v in config.items() if k != "class"}
        try:
            inspect.signature(callback_cls).bind(**kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(
                f"Cannot rebuild {callback_cls.__qualname__} from config keys {sorted(kwargs)}: {exc}. Override "
                "get_config() so that it returns the constructor's arguments."
            ) from None
        return callback_cls(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r}, execution_order={self.execution_order})"
