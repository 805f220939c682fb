"""Plots of results (matplotlib, the optional extra ``pip install "modularml[plot]"``).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so a script shows
nothing unless it asks (``fig.savefig(...)``); a notebook displays a returned figure as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modularml.errors import InvalidArgumentError
from modularml.results.metric_store import MetricStore

__all__ = ["plot_epoch_metrics"]


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            'Plots need matplotlib, an optional extra of modularml. Install it with: pip install "modularml[plot]"'
        ) from None
    return Figure


def plot_epoch_metrics(
    store: MetricStore,
    names: Sequence[str],
    *,
    title: str | None = None,
    ylabel: str = "value",
    log_scale: bool = False,
    ax: Any = None,
) -> Any:
    """One line per metric of its epoch-level values against the epoch.

    Args:
        store: The metrics.
        names: The metrics to draw (each must have epoch-level values).
        title: Title of the axes.
        ylabel: Label of the y axis.
        log_scale: Use a logarithmic y axis.
        ax: Axes to draw into; a new figure with one axes by default.

    Returns:
        matplotlib.figure.Figure: The figure holding the axes.

    Raises:
        ImportError: If matplotlib is not installed; the message says how to install it.
        ValueError: If ``names`` is empty or a metric has no epoch-level value.
    """
    if not names:
        raise InvalidArgumentError(f"Nothing to plot: give at least one metric name; logged: {store.names}.")
    series = {name: store.epoch_values(name) for name in names}
    empty = [name for name, values in series.items() if not values]
    if empty:
        raise InvalidArgumentError(f"Metrics {empty} have no epoch-level values to plot (only batch-level ones).")
    if ax is None:
        figure = _figure_class()(figsize=(6.4, 4.0), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    for name, values in series.items():
        epochs = sorted(values)
        ax.plot(epochs, [values[e] for e in epochs], marker="o" if len(epochs) <= 30 else None, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    return figure
