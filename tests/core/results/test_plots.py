"""Plots of results: figures built without pyplot, rendered to PNG with Agg, holding exactly the results' data."""

from __future__ import annotations

import io

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Evaluation
from modularml.errors import InvalidArgumentError
from modularml.phases import TrainPhase
from modularml.results import MetricStore
from modularml.results.plots import plot_epoch_metrics

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_plot_losses_draws_train_and_validation_per_epoch(linear_setup) -> None:
    s = linear_setup()
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    phase = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=4)
    phase.add_callback(Evaluation.from_split("val", split="val", losses=[s.loss]))
    results = phase.execute(**QUIET)
    figure = results.plot_losses(log_scale=True)
    (ax,) = figure.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"train_loss", "val_loss"}
    for name, line in lines.items():
        values = results.metrics().epoch_values(name)
        np.testing.assert_array_equal(line.get_xdata(), sorted(values))
        np.testing.assert_array_equal(line.get_ydata(), [values[e] for e in sorted(values)])
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "epoch"
    png = _png(figure)
    assert png.startswith(b"\x89PNG")
    assert len(png) > 5_000  # a real, non-empty image


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

    store = MetricStore()
    store.log("loss", 1.0, 0)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r'pip install "modularml\[plot\]"'):
        plot_epoch_metrics(store, ["loss"])
