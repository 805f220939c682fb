"""Executors run independent work items (cross-validation folds, ensemble members).

The core ships :class:`LocalExecutor`, which runs them one after another in this process.
Plugins contribute others (for example a Ray executor) through the ``register_executors``
hook; all share the ``map`` signature below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from modularml.utils.environment import bars_allowed

__all__ = ["LocalExecutor"]

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """Runs work items sequentially in the calling process, in input order.

    Args:
        show_progress: Default for :meth:`map`'s progress bar.
    """

    name = "local"

    def __init__(self, *, show_progress: bool = False) -> None:
        self.show_progress = show_progress

    def map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        show_progress: bool | None = None,
        description: str | None = None,
    ) -> list[R]:
        """Apply ``fn`` to every item and return the results in input order.

        An exception raised by ``fn`` propagates at once; later items are not run.

        Args:
            fn: Function of one item.
            items: The work items.
            show_progress: Show a tqdm progress bar; defaults to the executor's setting.
            description: Label of the progress bar.
        """
        items = list(items)
        show = self.show_progress if show_progress is None else show_progress
        iterator: Iterable[Any] = items
        if show and bars_allowed():  # no control codes into a file or a pipe
            from tqdm.auto import tqdm

            iterator = tqdm(items, desc=description, total=len(items))
        return [fn(item) for item in iterator]

    def get_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this executor."""
        return {"show_progress": self.show_progress}
