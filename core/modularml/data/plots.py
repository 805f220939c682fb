"""Plots of a FeatureSet's splits (matplotlib, the optional extra ``pip install "modularml[plot]"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.errors import InvalidArgumentError
from modularml.utils.plotting import axes_for

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet

__all__ = ["plot_splits", "split_membership"]


def split_membership(fs: FeatureSet, group_by: str) -> tuple[list[Any], dict[str, np.ndarray]]:
    """The values of tag ``group_by`` and, per split, how many of the split's samples have each value.

    Returns:
        tuple: The sorted group values, and split name -> counts (one per group value).

    Raises:
        KeyError: If ``group_by`` is not a tag key of ``fs``.
    """
    values = np.asarray(fs.get_tags(fmt="dict_numpy", keys=[group_by])[group_by])
    if values.ndim != 1:
        raise InvalidArgumentError(f"Tag {group_by!r} holds arrays per sample; group by a tag of one value per sample.")
    groups, codes = np.unique(values, return_inverse=True)
    counts = {
        name: np.bincount(codes[fs.get_split(name).valid_indices], minlength=len(groups))
        for name in fs.available_splits
    }
    return groups.tolist(), counts


def plot_splits(fs: FeatureSet, *, group_by: str | None = None, ax: Any = None) -> Any:
    """The sizes of the splits of ``fs`` (a bar per split), and with ``group_by`` the split of every group.

    With ``group_by`` (a tag key, e.g. ``"cell_id"``) a second panel has a stacked bar per group
    value: how many of its samples are in each split, so a leaking group (in two splits) shows as
    a bar of two colours.

    Args:
        fs: The FeatureSet.
        group_by: A tag key whose values are the groups.
        ax: Axes to draw into (one, or two with ``group_by``); a new figure by default.

    Returns:
        matplotlib.figure.Figure: The figure.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If the FeatureSet has no split.
        KeyError: If ``group_by`` is not a tag key.
    """
    names = fs.available_splits
    if not names:
        raise InvalidArgumentError(
            f"FeatureSet {fs.label!r} has no split to plot; split it first (fs.split_random(...))."
        )
    membership = split_membership(fs, group_by) if group_by is not None else None
    axes = axes_for(1 if membership is None else 2, ax, panel_size=(5.5, 3.8))
    sizes = [len(fs.get_split(name).valid_indices) for name in names]
    bars = axes[0].bar(names, sizes, color=[f"C{i}" for i in range(len(names))])
    axes[0].bar_label(bars)
    axes[0].set_ylabel("samples")
    axes[0].set_title(f"splits of {fs.label!r} ({fs.n_samples} samples)")
    if membership is not None:
        groups, counts = membership
        positions = np.arange(len(groups))
        bottom = np.zeros(len(groups))
        for i, name in enumerate(names):
            axes[1].bar(positions, counts[name], bottom=bottom, color=f"C{i}", label=name)
            bottom += counts[name]
        axes[1].set_xticks(positions, [str(g) for g in groups], rotation=90 if len(groups) > 8 else 0)
        axes[1].set_xlabel(group_by)
        axes[1].set_ylabel("samples")
        axes[1].set_title(f"split of each {group_by}")
        axes[1].legend()
    return axes[0].figure
