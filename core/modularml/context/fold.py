"""The cross-validation fold that work runs in: a ``ContextVar``, set by :func:`fold_scope`.

Execution contexts and phase results record the fold active when they are created
(:attr:`ExecutionContext.fold`, :attr:`PhaseResults.fold`), so that loggers open a nested run per
fold and metric tables get a ``fold`` column. Outside cross-validation the fold is None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from modularml.errors import InvalidTypeError

__all__ = ["active_fold", "fold_scope"]

_ACTIVE_FOLD: ContextVar[str | None] = ContextVar("modularml_active_fold", default=None)


def active_fold() -> str | None:
    """The label of the fold being run (inside :func:`fold_scope`), or None."""
    return _ACTIVE_FOLD.get()


@contextlib.contextmanager
def fold_scope(label: str) -> Iterator[str]:
    """Run the block as fold ``label``: what phases create inside it records that fold.

    A cross-validation run wraps each fold's work in one; scopes nest (the innermost wins) and the
    previous fold is back on exit, even after an exception.

    Args:
        label: The fold's label (``"fold_0"``).

    Raises:
        TypeError: If ``label`` is not a non-empty string.

    Example:
        >>> with fold_scope("fold_0"):
        ...     results = experiment.run()  # results.get_train_result().fold == "fold_0"
    """
    if not isinstance(label, str) or not label:
        raise InvalidTypeError(f"A fold label is a non-empty string such as 'fold_0'; got {label!r}.")
    token = _ACTIVE_FOLD.set(label)
    try:
        yield label
    finally:
        _ACTIVE_FOLD.reset(token)
