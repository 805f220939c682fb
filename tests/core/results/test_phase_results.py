from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import Batch
from modularml.batches.tensors import to_numpy
from modularml.phases import EvalPhase, InputBinding, TrainPhase
from modularml.results import EvalResults, PhaseResults, TrainResults
from modularml_numpy.models import LinearModel


def _train(s, **kwargs) -> TrainResults:
    sampler = mml.SimpleSampler(batch_size=kwargs.pop("batch_size", 8), shuffle=True, seed=0, **kwargs)
    phase = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=2)
    return phase.execute(show_sampler_progress=False, show_training_progress=False)


def test_stacked_tensors_unscale_targets_to_the_raw_values(linear_setup) -> None:
    s = linear_setup(scale_targets="Negate")
    raw = s.fs["val"].get_targets(fmt="np", rep="raw")
    results = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=5).execute()
    assert isinstance(results, EvalResults)
    scaled = results.stacked_tensors(s.head, "targets", fmt="np")
    np.testing.assert_allclose(scaled.reshape(-1), -raw.reshape(-1))
    unscaled = results.stacked_tensors(s.head, "targets", fmt="np", unscale=True)
    np.testing.assert_allclose(unscaled.reshape(-1), raw.reshape(-1))
    outputs = results.stacked_tensors(s.head, "outputs", fmt="np")
    np.testing.assert_allclose(results.stacked_tensors(s.head, "outputs", unscale=True), -outputs, rtol=1e-6)
    uuids = results.stacked_tensors(s.head, "sample_uuids")
    np.testing.assert_array_equal(uuids, s.fs["val"].get_sample_uuids())
    with pytest.raises(ValueError, match="unscale=True applies"):
        results.stacked_tensors(s.head, "tags", unscale=True)
    with pytest.raises(ValueError, match="domain is one of"):
        results.stacked_tensors(s.head, "features")


def test_unscale_after_training_recovers_predictions_in_target_units(linear_setup) -> None:
    s = linear_setup(scale_targets="Negate")
    _train(s)
    for _ in range(6):
        _train(s)
    results = EvalPhase.from_split("val", split="val").execute()
    predictions = results.stacked_tensors(s.head, "outputs", unscale=True, fmt="np").reshape(-1)
    raw = s.fs["val"].get_targets(fmt="np", rep="raw").reshape(-1)
    assert np.mean((predictions - raw) ** 2) < 0.05 * np.var(raw)


def test_source_views_return_exactly_the_samples_used(linear_setup) -> None:
    s = linear_setup()
    results = _train(s, batch_size=10, drop_last=True)  # 48 rows: 4 batches of 10 per epoch
    used = {u for b in results.batches(s.head) for u in b.sample_uuids.tolist()}
    views = results.source_views(s.head)
    assert list(views) == ["data"]
    view = views["data"]
    assert set(view.get_sample_uuids().tolist()) == used
    assert view.n_samples == len(used) <= 48
    assert set(used) <= set(s.fs["train"].get_sample_uuids().tolist())
    first = results.source_view(s.head, epoch=0, batch=0)
    np.testing.assert_array_equal(
        np.sort(first.get_sample_uuids()), np.sort(results.batches(s.head, epoch=0, batch=0).one().sample_uuids)
    )
    evaluation = EvalPhase.from_split("val", split="val").execute()
    np.testing.assert_array_equal(np.sort(evaluation.source_view(s.head).indices), np.sort(s.fs["val"].indices))


def test_source_views_skip_masked_rows(linear_setup) -> None:
    s = linear_setup(extra_heads=1)
    bindings = [
        InputBinding.for_training(node=s.head, sampler=mml.SimpleSampler(batch_size=16), split="train"),
        InputBinding.for_training(node=s.extra[0], sampler=mml.SimpleSampler(batch_size=24), split="val"),
    ]
    phase = TrainPhase(
        "alt", input_sources=bindings, losses=[s.loss, *s.extra_losses], batch_schedule="alternate_strict"
    )
    results = phase.execute(show_sampler_progress=False, show_training_progress=False)
    view = results.source_view(s.extra[0])
    np.testing.assert_array_equal(np.sort(view.indices), np.sort(s.fs["val"].indices))


def test_stacked_batches_and_aggregated_losses(linear_setup) -> None:
    s = linear_setup()
    results = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=4).execute()
    stacked = results.stacked_batches(s.head)
    assert isinstance(stacked, Batch)
    assert stacked.batch_size == 16
    assert isinstance(results.stacked_batches(s.head, fmt="np").outputs, np.ndarray)
    losses = results.losses(s.head)
    assert losses.axes == ("loss", "epoch", "batch")
    assert losses.keys() == [(s.loss.label, 0, b) for b in range(4)]
    per_step = losses.select(loss=s.loss.label, epoch=0).values
    assert len(per_step) == 4
    contexts = results.execution_contexts()
    assert per_step == pytest.approx([float(to_numpy(c.losses[s.loss.label]).sum()) for c in contexts])
    assert results.aggregated_losses(s.head) == {s.loss.label: pytest.approx(np.mean(per_step))}
    assert results.aggregated_losses(s.head, reducer="sum") == {s.loss.label: pytest.approx(np.sum(per_step))}
    with pytest.raises(ValueError, match="reducer"):
        results.aggregated_losses(s.head, reducer="max")


def test_queries_name_what_is_missing(linear_setup) -> None:
    s = linear_setup()
    tail = mml.ModelNode("tail", LinearModel(output_shape=(1,)), s.fs)
    results = EvalPhase.from_split("val", split="val").execute()
    with pytest.raises(KeyError, match="'tail' produced no output"):
        results.stacked_tensors(tail, "outputs")
    with pytest.raises(ValueError, match="no recorded loss on node 'head'"):
        results.aggregated_losses("head")
    with pytest.raises(ValueError, match="no execution contexts"):
        PhaseResults("empty").batches(s.head)


def test_train_results_indices(linear_setup) -> None:
    s = linear_setup()
    results = _train(s)
    assert results.epoch_indices == [0, 1]
    assert results.n_epochs == 2
    assert results.n_batches == 6
    assert len(results.batches(s.head, epoch=1)) == 6
    assert results.stacked_tensors(s.head, "outputs", epoch=1).shape[0] == 48
    assert set(results.epoch_losses()) == {0, 1}
