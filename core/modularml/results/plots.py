"""Plots of results (matplotlib, the optional extra ``pip install "modularml[plot]"``).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so a script shows
nothing unless it asks (``fig.savefig(...)``); a notebook displays a returned figure as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.errors import InvalidArgumentError, NotRegisteredError
from modularml.results.metric_store import MetricStore
from modularml.utils.plotting import axes_for

if TYPE_CHECKING:
    from modularml.results.phase_results import PhaseResults
    from modularml.results.train_results import TrainResults

__all__ = ["plot_epoch_metrics", "plot_losses", "plot_predictions"]


def _marker(n_points: int) -> str | None:
    return "o" if n_points <= 30 else None


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
    (ax,) = axes_for(1, ax, panel_size=(6.4, 4.0))
    for name, values in series.items():
        epochs = sorted(values)
        ax.plot(epochs, [values[e] for e in epochs], marker=_marker(len(epochs)), label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax.figure


def _epoch_means(series: Any) -> dict[int, float]:
    """``(epoch, batch) -> value`` of one loss reduced to ``epoch -> mean over the epoch's batches``."""
    if not len(series):
        return {}
    return {key[0]: value for key, value in series.collapse("batch", "mean").items()}


def loss_curves(results: TrainResults) -> dict[tuple[str, str], dict[str, dict[int, float]]]:
    """The loss curves of a training: ``(node label, loss label) -> {"train" | validation label: {epoch: value}}``.

    Training values are the epoch means of every recorded step's loss; validation values come
    from the evaluation callbacks whose contexts were kept (the mean over their batches). Empty
    when the results recorded no contexts.
    """
    from modularml.results.nodes import _graph_node

    curves: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    evaluations = list(dict.fromkeys(r.label for r in results.callbacks("evaluation")))
    for loss_label, node_id in results._loss_nodes.items():
        node = _graph_node(node_id)
        train = _epoch_means(results.losses(node).where(loss=loss_label).select(loss=loss_label))
        if not train:
            continue
        lines = {"train": train}
        for label in evaluations:
            validation = results.validation_losses(node, label=label).where(loss=loss_label)
            values = {key[1]: value for key, value in validation.items()}
            if values:
                lines["validation" if len(evaluations) == 1 else f"validation ({label})"] = values
        curves[(node.label, loss_label)] = lines
    return curves


def plot_losses(results: TrainResults, *, log_scale: bool = False, ax: Any = None) -> Any:
    """The losses of a training per epoch: one axes per (node, loss), training and validation lines in each.

    When the results recorded no execution contexts (``result_recording="none"``), the loss
    metrics (``train_loss``, ``val_loss``, any other ``*_loss``) are drawn on one axes instead.

    Args:
        results: The TrainResults.
        log_scale: Use a logarithmic y axis.
        ax: Axes to draw into (one per panel); a new figure by default.

    Returns:
        matplotlib.figure.Figure: The figure.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If there is no loss to draw, or the number of given axes does not match.
    """
    curves = loss_curves(results)
    if not curves:
        store = results.metrics()
        names = [n for n in store.names if n.endswith("_loss") and store.epoch_values(n)]
        if not names:
            raise InvalidArgumentError(
                f"Results {results.label!r} hold no loss to plot: no recorded steps and no '*_loss' metric per epoch "
                f"(metrics: {store.names})."
            )
        return plot_epoch_metrics(
            store, names, title=f"losses of {results.label!r}", ylabel="loss", log_scale=log_scale, ax=ax
        )
    axes = axes_for(len(curves), ax)
    for axis, ((node, loss), lines) in zip(axes, curves.items(), strict=True):
        for name, values in lines.items():
            epochs = sorted(values)
            axis.plot(epochs, [values[e] for e in epochs], marker=_marker(len(epochs)), label=name)
        axis.set_title(f"{node}: {loss}")
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss")
        if log_scale:
            axis.set_yscale("log")
        axis.legend()
    return axes[0].figure


def plot_predictions(
    results: PhaseResults,
    node: Any,
    *,
    unscale: bool = True,
    epoch: int | None = None,
    role: str = "default",
    ax: Any = None,
) -> Any:
    """Predicted against true values of ``node``: one scatter per target (every element of a curve target).

    Each panel has the line ``predicted == true``. Padding rows (masked samples) are left out.

    Args:
        results: The results holding the node's outputs.
        node: The node (instance, id or label).
        unscale: Show both in the targets' original units (invert the FeatureSet's target
            scalers). Defaults to True.
        epoch: The epoch whose steps to draw; the last recorded one by default (evaluation and
            fit results have one).
        role: The role to read. Defaults to ``"default"``.
        ax: Axes to draw into (one per panel); a new figure by default.

    Returns:
        matplotlib.figure.Figure: The figure.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If the outputs and targets have different sizes per sample, or cannot be unscaled.
        KeyError: If the node produced no recorded output.
    """
    from modularml.results.frames import _source
    from modularml.results.nodes import _graph_node, upstream_featureset_refs

    graph_node = _graph_node(node)
    recorded = sorted({c.epoch_idx for c in results.execution_contexts() if graph_node.node_id in c.outputs})
    if not recorded:
        raise NotRegisteredError(f"Node {graph_node.label!r} produced no recorded output in results {results.label!r}.")
    chosen = recorded[-1] if epoch is None else epoch
    args = {"role": role, "fmt": "np", "unscale": unscale, "epoch": chosen}
    predicted = np.asarray(results.stacked_tensors(graph_node, "outputs", **args), dtype=np.float64)
    true = np.asarray(results.stacked_tensors(graph_node, "targets", **args), dtype=np.float64)
    uuids = np.asarray(results.stacked_tensors(graph_node, "sample_uuids", role=role, epoch=chosen)).astype(str)
    n = len(true)
    if predicted.size != true.size:
        raise InvalidArgumentError(
            f"Cannot plot the predictions of node {graph_node.label!r}: its outputs have {predicted.size // n} values "
            f"per sample and its targets {true.size // n}."
        )
    keep = uuids != ""
    predicted, true = predicted.reshape(n, -1)[keep], true.reshape(n, -1)[keep]
    _, keys, _ = _source(upstream_featureset_refs(graph_node))
    panels = (
        {key: (true[:, i], predicted[:, i]) for i, key in enumerate(keys)}
        if len(keys) == true.shape[1] and keys
        else {", ".join(keys) or "targets": (true.reshape(-1), predicted.reshape(-1))}
    )
    axes = axes_for(len(panels), ax, panel_size=(4.2, 4.0))
    units = "" if unscale else " (scaled)"
    for axis, (key, (x, y)) in zip(axes, panels.items(), strict=True):
        axis.scatter(x, y, s=12, alpha=0.7, label="samples")
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        axis.plot([low, high], [low, high], color="0.4", linewidth=1, linestyle="--", label="predicted = true")
        axis.set_xlabel(f"true {key}{units}")
        axis.set_ylabel(f"predicted {key}{units}")
        axis.set_title(f"{graph_node.label} ({results.label}, epoch {chosen})")
        axis.legend()
    return axes[0].figure
