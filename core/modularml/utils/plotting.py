"""Figures for the plots of data and results: matplotlib (the optional extra ``pip install "modularml[plot]"``).

Figures are built with :class:`matplotlib.figure.Figure`, never through pyplot, so a script shows
nothing unless it asks (``fig.savefig(...)``) and no GUI backend is started; a notebook displays a
returned figure as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["axes_for", "new_figure"]


def new_figure(**kwargs: Any) -> Any:
    """A new ``matplotlib.figure.Figure`` (``layout="constrained"`` unless given).

    Raises:
        ImportError: If matplotlib is not installed; the message names the ``modularml[plot]`` extra.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            'Plots need matplotlib, an optional extra of modularml. Install it with: pip install "modularml[plot]"'
        ) from None
    kwargs.setdefault("layout", "constrained")
    return Figure(**kwargs)


def axes_for(n: int, ax: Any = None, *, panel_size: tuple[float, float] = (5.0, 3.6), max_columns: int = 3) -> list:
    """``n`` axes to draw into: the given ones (one Axes, or a sequence of ``n``), or a new figure's grid.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If the number of given axes is not ``n``.
        TypeError: If ``ax`` is neither an Axes nor a sequence of them.
    """
    if ax is not None:
        given = list(ax) if isinstance(ax, Sequence) else [ax]
        if not all(hasattr(a, "figure") and hasattr(a, "plot") for a in given):
            raise InvalidTypeError(f"ax is a matplotlib Axes or a sequence of them; got {ax!r:.100}.")
        if len(given) != n:
            raise InvalidArgumentError(
                f"This plot draws {n} panel(s) but {len(given)} axes were given; pass {n} axes, or none for a "
                "new figure."
            )
        return given
    columns = min(n, max_columns)
    rows = -(-n // columns)
    figure = new_figure(figsize=(panel_size[0] * columns, panel_size[1] * rows))
    grid = figure.subplots(rows, columns, squeeze=False)
    axes = [a for row in grid for a in row]
    for extra in axes[n:]:
        figure.delaxes(extra)
    return axes[:n]
