"""Plots of results: figures built without pyplot, rendered to PNG with Agg, holding exactly the results' data."""

from __future__ import annotations

import io

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Evaluation
from modularml.errors import InvalidArgumentError
from modularml.phases import EvalPhase, TrainPhase
from modularml.results import MetricStore
from modularml.results.plots import plot_epoch_metrics

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _train(s, *, n_epochs: int = 4, recording: str = "all", losses=None):
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    losses = losses or [s.loss]
    phase = TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=losses, n_epochs=n_epochs, result_recording=recording
    )
    phase.add_callback(Evaluation.from_split("val", split="val", losses=losses))
    return phase.execute(**QUIET)


def test_plot_losses_draws_one_axes_per_node_and_loss(linear_setup) -> None:
    s = linear_setup(extra_heads=1)
    results = _train(s, losses=[s.loss, *s.extra_losses])
    figure = results.plot_losses(log_scale=True)
    assert len(figure.axes) == 2
    for ax, node, loss in zip(figure.axes, [s.head, *s.extra], [s.loss, *s.extra_losses], strict=True):
        assert ax.get_title() == f"{node.label}: {loss.label}"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"train", "validation"}
        train = results.losses(node).where(loss=loss.label).collapse("batch", "mean")
        np.testing.assert_array_equal(lines["train"].get_xdata(), [k[1] for k, _ in train.items()])
        np.testing.assert_allclose(lines["train"].get_ydata(), train.values)
        validation = results.validation_losses(node).where(loss=loss.label)
        np.testing.assert_array_equal(lines["validation"].get_xdata(), [k[1] for k, _ in validation.items()])
        np.testing.assert_allclose(lines["validation"].get_ydata(), validation.values)
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel() == "epoch"
    with pytest.raises(InvalidArgumentError, match="2 panel"):
        results.plot_losses(ax=figure.axes[:1])
    # one loss: its training curve is the train_loss metric per epoch
    single = _train(s, losses=[s.loss])
    (ax,) = single.plot_losses().axes
    train_line = next(line for line in ax.get_lines() if line.get_label() == "train")
    expected = single.metrics().epoch_values("train_loss")
    np.testing.assert_allclose(train_line.get_ydata(), [expected[e] for e in sorted(expected)], rtol=1e-6)
    png = _png(figure)
    assert png.startswith(b"\x89PNG")
    assert len(png) > 5_000  # a real, non-empty image


def test_plot_losses_without_recorded_steps_draws_the_loss_metrics(linear_setup) -> None:
    s = linear_setup()
    results = _train(s, recording="none")
    (ax,) = results.plot_losses().axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"train_loss", "val_loss"}
    for name, line in lines.items():
        values = results.metrics().epoch_values(name)
        np.testing.assert_array_equal(line.get_xdata(), sorted(values))
        np.testing.assert_array_equal(line.get_ydata(), [values[e] for e in sorted(values)])


def test_plot_predictions_shows_unscaled_values(linear_setup) -> None:
    s = linear_setup(scale_targets="Negate")
    _train(s, n_epochs=3)
    results = EvalPhase.from_split("val", split="val", losses=[s.loss]).execute()
    figure = results.plot_predictions("head")
    (ax,) = figure.axes
    points = ax.collections[0].get_offsets()
    true = results.stacked_tensors("head", "targets", fmt="np", unscale=True)
    predicted = results.stacked_tensors("head", "outputs", fmt="np", unscale=True)[:, 0]
    np.testing.assert_allclose(points[:, 0], true, rtol=1e-6)
    np.testing.assert_allclose(points[:, 1], predicted, rtol=1e-6)
    raw = dict(zip(s.fs.get_sample_uuids(), s.fs.get_targets(fmt="np", rep="raw"), strict=True))
    uuids = results.stacked_tensors("head", "sample_uuids")
    np.testing.assert_allclose(points[:, 0], [raw[u] for u in uuids], rtol=1e-6)  # the original units
    assert ax.get_xlabel() == "true y"
    scaled = results.plot_predictions("head", unscale=False).axes[0]
    np.testing.assert_allclose(scaled.collections[0].get_offsets()[:, 0], -true, rtol=1e-6)
    assert _png(figure).startswith(b"\x89PNG")
    train_results = _train(s, n_epochs=2)
    assert train_results.plot_predictions("head").axes[0].get_title().endswith("epoch 1)")  # the last epoch


def test_plot_splits_shows_sizes_and_groups() -> None:
    from modularml.datasets import make_featureset

    fs = make_featureset("cells", n_samples=120, n_points=8, n_groups=6, seed=0)
    fs.split_random({"train": 0.5, "val": 0.25, "test": 0.25}, group_by="cell_id", seed=1)
    figure = fs.plot_splits(group_by="cell_id")
    sizes_ax, groups_ax = figure.axes
    assert [p.get_height() for p in sizes_ax.patches] == [len(fs.get_split(n)) for n in fs.available_splits]
    cells = fs.get_tags(fmt="dict_numpy", keys=["cell_id"])["cell_id"]
    groups = sorted(set(cells))
    assert [t.get_text() for t in groups_ax.get_xticklabels()] == groups
    heights = np.array([p.get_height() for p in groups_ax.patches]).reshape(len(fs.available_splits), len(groups))
    for row, name in zip(heights, fs.available_splits, strict=True):
        members = set(fs.get_split(name).get_tags(fmt="dict_numpy", keys=["cell_id"])["cell_id"])
        assert row.tolist() == [int(np.sum(cells == g)) if g in members else 0 for g in groups]
    assert (heights > 0).sum(axis=0).tolist() == [1] * len(groups)  # whole groups: one split per cell
    assert len(fs.plot_splits().axes) == 1
    assert len(_png(figure)) > 5_000
    with pytest.raises(KeyError):
        fs.plot_splits(group_by="nope")
    empty = make_featureset("empty", n_samples=10, n_points=4, seed=0)
    with pytest.raises(InvalidArgumentError, match="no split"):
        empty.plot_splits()


def test_plot_metrics_into_given_axes_and_errors() -> None:
    from matplotlib.figure import Figure

    store = MetricStore()
    for epoch, value in enumerate([3.0, 2.0, 1.5]):
        store.log("loss", value, epoch)
        store.log("loss", value + 1, epoch, 0)
    store.log("only_batches", 1.0, 0, 0)
    figure = Figure()
    ax = figure.add_subplot()
    assert plot_epoch_metrics(store, ["loss"], ax=ax, title="t") is figure
    assert ax.get_title() == "t"
    assert ax.get_lines()[0].get_ydata().tolist() == [3.0, 2.0, 1.5]  # epoch-level values only
    with pytest.raises(InvalidArgumentError, match=r"only_batches.*no epoch-level values"):
        plot_epoch_metrics(store, ["only_batches"])
    with pytest.raises(InvalidArgumentError, match="at least one metric"):
        plot_epoch_metrics(store, [])
    with pytest.raises(KeyError, match="nope"):
        plot_epoch_metrics(store, ["nope"])


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    from modularml.datasets import make_featureset

    store = MetricStore()
    store.log("loss", 1.0, 0)
    fs = make_featureset("cells", n_samples=20, n_points=4, seed=0)
    fs.split_random({"train": 0.5, "val": 0.5}, seed=0)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r'pip install "modularml\[plot\]"'):
        plot_epoch_metrics(store, ["loss"])
    with pytest.raises(ImportError, match=r'pip install "modularml\[plot\]"'):
        fs.plot_splits()
