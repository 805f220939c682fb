"""Benchmark: samplers and batch gathering, each against a hand-written numpy equivalent in the same run.

Usage: ``python bench/bench_sampling.py REPORT.md`` appends a section to the report.

Measured (median of 7-9 runs after a warm-up, ModularML and its numpy equivalent run alternately):

- ``SimpleSampler(batch_size=256, shuffle=True)`` bound to a 1,000,000-sample FeatureSet:
  ``materialize_batches()`` and ``get_batches()`` (3,907 BatchViews), against
  ``rng.permutation`` of the row indices sliced into batches. Target: within 1.5x.
- The same sampler's next epoch (a fresh shuffle derived from ``(seed, epoch)``), against the
  same baseline. Target: within 1.5x.
- ``TripletSampler`` on 100,000 samples with one tolerance condition (positives within 0.01,
  negatives beyond 0.01 of the anchor's target; 3 per anchor; batches of 256, shuffled), against
  a hand-written numpy miner: ``argsort`` + ``searchsorted`` windows, 3 random positives inside
  and 3 random negatives outside each window (with replacement), shuffled and sliced. Target:
  within 1.5x. The sampler also draws without replacement, settles window edges exactly as the
  condition scores them, and scores every pair.
- ``BatchView.materialize_batch(fmt="numpy")`` for every batch of one epoch (1,000,000 samples,
  one (16,) float32 feature column and a scalar target), against numpy fancy indexing of what a
  Batch holds: features, targets and sample UUIDs, plus weights and masks. Target: within 1.5x.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _report import append_section, run

from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.samplers import SimpleSampler, TripletSampler
from modularml.similarity import SimilarityCondition

BATCH = 256


def _median_seconds(ours: Callable[[], object], baseline: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median seconds of ``ours`` and ``baseline``, run alternately so that both see the same machine load."""
    ours(), baseline()  # warm up (imports, caches)
    mine, theirs = [], []
    for _ in range(runs):
        for fn, times in ((ours, mine), (baseline, theirs)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(mine), statistics.median(theirs)


def _numpy_simple(rows: np.ndarray, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(rows)
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]


def bench_simple(rows_out: list[tuple]) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    fs = FeatureSet.from_dict(
        "simple",
        {"x": rng.random((n, 16), dtype=np.float32), "y": rng.random(n, dtype=np.float32)},
        "x",
        "y",
    )
    rows = fs.to_view().valid_indices

    def ours() -> list:
        sampler = SimpleSampler(batch_size=BATCH, shuffle=True, seed=0, show_progress=False)
        sampler.bind_sources([fs])
        return sampler.materialize_batches().get_batches()

    batches = ours()
    expected = _numpy_simple(rows, 0)
    assert len(batches) == len(expected) == -(-n // BATCH)
    seen = np.concatenate([b.role_indices["default"] for b in batches])
    assert np.array_equal(np.sort(seen), rows)
    mine, baseline = _median_seconds(ours, lambda: _numpy_simple(rows, 0), 9)
    rows_out.append((f"`SimpleSampler` materialise, {n:,} samples / batches of {BATCH}", mine, baseline))

    sampler = SimpleSampler(batch_size=BATCH, shuffle=True, seed=0, show_progress=False, source=fs)
    sampler.materialize_batches()
    epoch = iter(range(1, 10_000))
    mine, baseline = _median_seconds(lambda: sampler.get_batches(epoch=next(epoch)), lambda: _numpy_simple(rows, 0), 9)
    rows_out.append(("`SimpleSampler` next epoch (fresh shuffle)", mine, baseline))

    features = fs.collection.to_numpy("features.x.raw")
    targets = fs.collection.to_numpy("targets.y.raw")
    uuids = fs.collection.sample_uuids()

    def gather_ours() -> None:
        for view in batches:
            view.materialize_batch("numpy")

    def gather_numpy() -> None:
        for idx in expected:
            features[idx], targets[idx], uuids[idx], np.ones(len(idx), dtype=np.float32), np.ones(len(idx), bool)

    one = batches[0].materialize_batch("numpy")
    np.testing.assert_array_equal(one.features, features[batches[0].role_indices["default"]])
    mine, baseline = _median_seconds(gather_ours, gather_numpy, 7)
    rows_out.append((f"`materialize_batch`, one epoch ({len(batches):,} batches, x (16,) + y)", mine, baseline))


def _numpy_triplets(y: np.ndarray, tolerance: float, k: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    n = len(y)
    order = np.argsort(y, kind="stable")
    sorted_y = y[order]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    lo = np.searchsorted(sorted_y, sorted_y - tolerance, "left")[position]
    hi = np.searchsorted(sorted_y, sorted_y + tolerance, "right")[position]
    inside = hi - lo - 1
    outside = n - (hi - lo)
    ok = (inside > 0) & (outside > 0)
    offset = (rng.random((n, k)) * inside[:, None]).astype(np.int64)
    positive = order[lo[:, None] + offset + (offset >= (position - lo)[:, None])]
    offset = (rng.random((n, k)) * outside[:, None]).astype(np.int64)
    negative = order[np.where(offset < lo[:, None], offset, offset + (hi - lo)[:, None])]
    anchor = np.repeat(np.flatnonzero(ok), k)
    positive, negative = positive[ok].reshape(-1), negative[ok].reshape(-1)
    weights = np.ones(len(anchor), dtype=np.float32)
    shuffle = rng.permutation(len(anchor))
    anchor, positive, negative, weights = anchor[shuffle], positive[shuffle], negative[shuffle], weights[shuffle]
    return [
        (anchor[i : i + BATCH], positive[i : i + BATCH], negative[i : i + BATCH], weights[i : i + BATCH])
        for i in range(0, len(anchor), BATCH)
    ]


def bench_triplet(rows_out: list[tuple]) -> None:
    n = 100_000
    tolerance = 0.01
    rng = np.random.default_rng(1)
    y = rng.random(n)
    fs = FeatureSet.from_dict("triplets", {"x": rng.random(n, dtype=np.float32), "y": y}, "x", "y")

    def ours() -> list:
        sampler = TripletSampler(
            {"y": SimilarityCondition(tolerance=tolerance)},
            {"y": SimilarityCondition(mode="dissimilar", tolerance=tolerance)},
            max_samples_per_anchor=3,
            batch_size=BATCH,
            shuffle=True,
            seed=0,
            show_progress=False,
        )
        sampler.bind_sources([fs])
        return sampler.materialize_batches().get_batches()

    batches = ours()
    expected = _numpy_triplets(y, tolerance, 3, 0)
    assert len(batches) == len(expected), (len(batches), len(expected))
    first = batches[0]
    a, p, neg = (first.role_indices[r] for r in ("anchor", "positive", "negative"))
    assert (np.abs(y[a] - y[p]) <= tolerance).all()
    assert (np.abs(y[a] - y[neg]) > tolerance).all()
    mine, baseline = _median_seconds(ours, lambda: _numpy_triplets(y, tolerance, 3, 0), 9)
    rows_out.append((f"`TripletSampler`, {n:,} samples, 1 tolerance condition, 3 per anchor", mine, baseline))


def _format(rows: list[tuple], target: float) -> list[str]:
    lines = [
        "| what | ModularML | numpy equivalent | ratio | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for what, mine, baseline in rows:
        ratio = mine / baseline
        verdict = "meets" if ratio <= target else "MISSES"
        lines.append(
            f"| {what} | {mine * 1e3:.1f} ms | {baseline * 1e3:.1f} ms | {ratio:.2f}x | <= {target}x | {verdict} |"
        )
    return lines


def main(report: Path) -> None:
    rows: list[tuple] = []
    lines = [
        "## Sampling",
        "",
        f"Python {sys.version.split()[0]}, numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs. "
        "Median of 7-9 runs after a warm-up; ModularML and its numpy equivalent run alternately in one process.",
        "",
    ]
    with ExperimentContext(registration_policy="no_register").activate():
        bench_simple(rows)
        bench_triplet(rows)
    lines += [*_format(rows, 1.5), ""]
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
