from __future__ import annotations

import gc
import tracemalloc

import pytest

import modularml as mml
from modularml.phases import TrainPhase


def _traced_run(phase: TrainPhase) -> tuple[int, mml.TrainResults]:
    """Peak traced memory (bytes) of one run of ``phase`` (after a warm-up run), and its results."""
    quiet = {"show_sampler_progress": False, "show_training_progress": False}
    phase.execute(**quiet)  # warm-up: caches, lazily built optimizers and imports are not counted
    gc.collect()
    tracemalloc.start()
    try:
        results = phase.execute(**quiet)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, results


def _phase(s, n_epochs: int, recording: str) -> TrainPhase:
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    return TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs, result_recording=recording
    )


def test_recording_none_keeps_metrics_only_and_memory_stays_flat(linear_setup) -> None:
    s = linear_setup()
    peaks = {}
    for n_epochs in (5, 50):
        peaks[n_epochs], results = _traced_run(_phase(s, n_epochs, "none"))
        assert len(results.execution_contexts()) == 0
        assert len(results.metrics().epoch_values("train_loss")) == n_epochs
        assert len(results.metrics().batch_values("train_loss")) == 3 * n_epochs
        assert results.n_epochs == n_epochs
        assert results.n_batches == 3
        with pytest.raises(ValueError, match="result_recording='none'"):
            results.batches(s.head)
    growth_none = peaks[50] - peaks[5]
    # 45 more epochs add 180 scalar metric entries (four per epoch, ~200 bytes each) and nothing
    # else; one epoch of recorded contexts alone costs ~13 kB here
    assert growth_none < 45 * 4_000, f"memory grew by {growth_none} bytes over 45 epochs"

    all_peaks = {n: _traced_run(_phase(s, n, "all"))[0] for n in (5, 20)}
    per_epoch_all = (all_peaks[20] - all_peaks[5]) / 15
    assert growth_none / 45 < 0.3 * per_epoch_all  # keeping every context costs much more


def test_recording_last_keeps_one_epoch_of_contexts(linear_setup) -> None:
    s = linear_setup()
    peak_short, short = _traced_run(_phase(s, 5, "last"))
    peak_long, long = _traced_run(_phase(s, 50, "last"))
    assert [c.epoch_idx for c in long.execution_contexts()] == [49, 49, 49]
    assert [c.epoch_idx for c in short.execution_contexts()] == [4, 4, 4]
    assert peak_long - peak_short < 45 * 4_000
