"""Executors run independent work items (cross-validation folds, ensemble members).

The core ships :class:`LocalExecutor`, which runs them one after another in this process.
Plugins contribute others (for example a Ray executor) through the ``register_executors``
hook; all share the ``map`` signature below, and all report a failed item alike: an
:class:`~modularml.errors.ExecutionError` built by :func:`work_item_error`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from modularml.errors import ExecutionError
from modularml.utils.environment import bars_allowed

__all__ = ["LocalExecutor", "item_label", "work_item_error"]

T = TypeVar("T")
R = TypeVar("R")


def item_label(item: object) -> str | None:
    """The ``"label"`` of a work item that is a mapping with a string label, else ``None``."""
    if isinstance(item, Mapping):
        label = item.get("label")
        if isinstance(label, str):
            return label
    return None


def work_item_error(index: int, item: object, cause: BaseException) -> ExecutionError:
    """The error an executor raises (``from cause``) when the item at ``index`` failed with ``cause``.

    The message names the item's index, its label (see :func:`item_label`) and the cause's type and
    message, so a failure reads the same whichever executor ran the item.
    """
    label = item_label(item)
    named = f"work item {index}" + (f" ({label!r})" if label is not None else "")
    return ExecutionError(f"{named} failed: {type(cause).__name__}: {cause}", index=index, label=label)


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

        An exception raised by ``fn`` stops the map at once (later items are not run).

        Args:
            fn: Function of one item.
            items: The work items.
            show_progress: Show a tqdm progress bar; defaults to the executor's setting.
            description: Label of the progress bar.

        Returns:
            ``[fn(item) for item in items]``.

        Raises:
            ExecutionError: ``fn`` raised for an item; the message names the item's index (and its
                ``"label"``), and the original exception is the ``__cause__``.
        """
        items = list(items)
        show = self.show_progress if show_progress is None else show_progress
        iterator: Iterable[Any] = items
        if show and bars_allowed():  # no control codes into a file or a pipe
            from tqdm.auto import tqdm

            iterator = tqdm(items, desc=description, total=len(items))
        results = []
        for index, item in enumerate(iterator):
            try:
                results.append(fn(item))
            except Exception as exc:
                raise work_item_error(index, item, exc) from exc
        return results

    def get_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this executor."""
        return {"show_progress": self.show_progress}
