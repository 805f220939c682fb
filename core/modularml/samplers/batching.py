"""The order of one epoch: which samples form which batch (shuffle, group_by, stratify_by, drop_last).

Every function here works on whole index arrays; the loop-free result is an ``order`` of the samples
and ``starts``/``stops`` of each batch within it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modularml.errors import InvalidArgumentError

__all__ = ["EpochPlan", "plan_epoch"]

EpochPlan = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(order, starts, stops)``: batch ``b`` holds samples ``order[starts[b]:stops[b]]``."""


def _chunks(n: int, batch_size: int, drop_last: bool) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, n, batch_size, dtype=np.int64)
    stops = np.minimum(starts + batch_size, n)
    if drop_last and len(stops) and stops[-1] - starts[-1] < batch_size:
        starts, stops = starts[:-1], stops[:-1]
    return starts, stops


def _within_code_order(codes: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Samples sorted by code; within a code in sample order, or at random with ``rng``."""
    if rng is None:
        return np.argsort(codes, kind="stable")
    return np.lexsort((rng.random(len(codes)), codes))


def plan_epoch(
    n: int,
    *,
    batch_size: int,
    drop_last: bool,
    rng: np.random.Generator | None,
    group_codes: np.ndarray | None = None,
    strata_codes: np.ndarray | None = None,
    strata_keys: Sequence[Any] = (),
    strict_stratification: bool = True,
) -> EpochPlan:
    """Plan the batches of one epoch over ``n`` samples.

    Args:
        n: Number of samples.
        batch_size: Samples per batch.
        drop_last: Drop a short last batch (with ``group_by``: each group's short last batch).
        rng: The epoch's generator when shuffling, else None (the order is the sample order).
        group_codes: ``(n,)`` group code per sample: every batch holds one group; groups are taken
            in code order (batches in random order when shuffling).
        strata_codes: ``(n,)`` stratum code per sample: every batch holds each stratum's share
            of the batch rounded down or up, the strata alternating round-robin inside the batch
            (batches in random order when shuffling).
        strata_keys: Stratum values by code, for error messages.
        strict_stratification: With strata, require every full batch to hold every stratum.

    Returns:
        EpochPlan: ``(order, starts, stops)``.

    Raises:
        ValueError: If ``drop_last`` leaves no batch, or strict stratification cannot be met.
    """
    if group_codes is not None:
        return _plan_groups(group_codes, batch_size, drop_last, rng)
    if strata_codes is not None:
        return _plan_strata(strata_codes, batch_size, drop_last, rng, strata_keys, strict_stratification)
    order = rng.permutation(n) if rng is not None else np.arange(n, dtype=np.int64)
    starts, stops = _chunks(n, batch_size, drop_last)
    if drop_last and not len(starts):
        raise InvalidArgumentError(
            f"drop_last=True with batch_size={batch_size} drops every sample: there are only {n}. Use a smaller "
            "batch_size or drop_last=False."
        )
    return order, starts, stops


def _plan_groups(codes: np.ndarray, batch_size: int, drop_last: bool, rng: np.random.Generator | None) -> EpochPlan:
    order = _within_code_order(codes, rng)
    sizes = np.bincount(codes)
    group_starts = np.cumsum(sizes) - sizes
    per_group = sizes // batch_size if drop_last else -(-sizes // batch_size)
    total = int(per_group.sum())
    if total == 0:
        raise InvalidArgumentError(
            f"drop_last=True with batch_size={batch_size} drops every group: the largest of the {len(sizes)} groups "
            f"has {int(sizes.max(initial=0))} samples. Use a smaller batch_size or drop_last=False."
        )
    group_of_batch = np.repeat(np.arange(len(sizes)), per_group)
    batch_in_group = np.arange(total) - np.repeat(np.cumsum(per_group) - per_group, per_group)
    starts = group_starts[group_of_batch] + batch_in_group * batch_size
    stops = np.minimum(starts + batch_size, group_starts[group_of_batch] + sizes[group_of_batch])
    if rng is not None:
        shuffled = rng.permutation(total)
        starts, stops = starts[shuffled], stops[shuffled]
    return order, starts, stops


def _apportion(sizes: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``sizes`` (largest remainder, exact integer arithmetic)."""
    n = int(sizes.sum())
    scaled = sizes.astype(np.int64) * total
    shares = scaled // n
    left = total - int(shares.sum())
    if left:
        shares[np.argsort(-(scaled % n), kind="stable")[:left]] += 1
    return shares


def _strata_counts(sizes: np.ndarray, batch_size: int) -> np.ndarray:
    """``(n_batches, n_strata)`` counts: each stratum's share of every batch, rounded down or up.

    Every full batch gets ``floor(batch_size * share)`` of each stratum plus one more for as many
    strata as the rounding leaves room for; those extras are dealt round-robin over the batches
    (a stratum's run of extras is never longer than the number of batches, so no batch gets two of
    one stratum). The short last batch gets its largest-remainder share. Column sums are the
    stratum sizes.
    """
    n = int(sizes.sum())
    n_full, last = divmod(n, batch_size)
    base = (sizes.astype(np.int64) * batch_size) // n
    tail = _apportion(sizes, last) if last else np.zeros(len(sizes), dtype=np.int64)
    extras = sizes - n_full * base - tail  # each within [0, n_full]
    counts = np.tile(base, (n_full, 1))
    if n_full and extras.any():
        strata = np.repeat(np.arange(len(sizes)), extras)
        counts[np.arange(len(strata)) % n_full, strata] += 1
    return np.vstack([counts, tail[None, :]]) if last else counts


def _plan_strata(
    codes: np.ndarray,
    batch_size: int,
    drop_last: bool,
    rng: np.random.Generator | None,
    keys: Sequence[Any],
    strict: bool,
) -> EpochPlan:
    n = len(codes)
    sizes = np.bincount(codes)
    n_strata = len(sizes)
    counts = _strata_counts(sizes, batch_size)
    n_batches = len(counts)
    by_stratum = _within_code_order(codes, rng)
    first_of_stratum = np.cumsum(sizes) - sizes
    rank = np.empty(n, dtype=np.int64)
    rank[by_stratum] = np.arange(n) - first_of_stratum[codes[by_stratum]]
    # deal each stratum's samples (in its own order) to the batches, counts[b, k] to batch b
    dealt = np.cumsum(counts.T.reshape(-1))
    batch_of = np.empty(n, dtype=np.int64)
    batch_of[by_stratum] = np.searchsorted(dealt, np.arange(n), "right") % n_batches
    # within a batch, strata alternate: the r-th of a stratum of size s sits at (r + 0.5) / s
    position = (rank + 0.5) / sizes[codes]
    tie_break = codes if rng is None else rng.permutation(n_strata)[codes]
    order = np.lexsort((tie_break, position, batch_of))
    stops = np.cumsum(counts.sum(axis=1))
    starts = stops - counts.sum(axis=1)
    full = counts.sum(axis=1) == batch_size
    if drop_last and not full[-1]:
        starts, stops, counts, full = starts[:-1], stops[:-1], counts[:-1], full[:-1]
        if not len(starts):
            raise InvalidArgumentError(
                f"drop_last=True with batch_size={batch_size} drops every sample: there are only {n}. Use a smaller "
                "batch_size or drop_last=False."
            )
    if strict and n_strata > 1 and full.any():
        missing = np.flatnonzero((counts[full] == 0).any(axis=0))
        if len(missing):
            small = ", ".join(f"{keys[s] if s < len(keys) else s} ({sizes[s]} samples)" for s in missing[:5])
            raise InvalidArgumentError(
                f"strict_stratification=True, but with batch_size={batch_size} and {n_strata} strata of {n} samples, "
                f"strata {small} cannot appear in every batch. Use a larger batch_size, merge small strata, or pass "
                "strict_stratification=False."
            )
    if rng is not None:
        shuffled = rng.permutation(len(starts))
        starts, stops = starts[shuffled], stops[shuffled]
    return order, starts, stops
