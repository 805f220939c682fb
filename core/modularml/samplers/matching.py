"""Vectorised candidate search for similarity-based samplers (pairs, triplets, N-way roles).

For every anchor (each row of the sampler's source view) and one role's conditions, find up to ``k``
candidate rows, ranked full match > partial match > non-match (the last two only where a
condition allows fallback), the anchor itself excluded, and score each with the mean of its
per-condition :meth:`~modularml.similarity.SimilarityCondition.score`.

Two strategies, neither with a Python loop over samples:

- One condition without a custom metric, with ``k`` given: the values are sorted once, each
  anchor's tolerance window is found with ``searchsorted``, and candidates are drawn inside or
  outside it (Floyd's sampling without replacement, vectorised over anchors, ``k`` steps), or taken
  nearest-first / farthest-first with a ``k``-step two-pointer walk. ``O(n log n + n k^2)``.
- Anything else: anchors are processed in blocks of candidate pairs. Where a condition is a
  plain ``similar`` one without fallback, only its tolerance window is enumerated (total work is
  the number of pairs within tolerance); otherwise every pair is scored (a blocked dense
  computation, ``O(n^2)``). Each block ranks its pairs with one ``lexsort``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from modularml.errors import InvalidArgumentError
from modularml.similarity import SimilarityCondition

__all__ = ["Candidates", "ConditionColumn", "find_candidates"]

#: Candidate pairs scored per block in the blocked strategy (bounds memory to a few hundred MB).
PAIR_BLOCK = 1 << 21


@dataclass(frozen=True)
class ConditionColumn:
    """One column a condition compares, over the rows of the sampler's source view.

    Attributes:
        name: Qualified column name.
        values: ``(n,)`` values as stored (passed to custom metrics).
        numeric: Whether values compare by absolute difference (else by equality).
        keys: ``float64`` values (numeric) or ``int64`` category codes (equality).
        order: ``argsort`` of ``keys`` (stable).
        sorted_keys: ``keys[order]``.
        position: Position of each row in the sorted order.
    """

    name: str
    values: np.ndarray
    numeric: bool
    keys: np.ndarray
    order: np.ndarray
    sorted_keys: np.ndarray
    position: np.ndarray
    _windows: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, name: str, values: np.ndarray) -> ConditionColumn:
        """Prepare ``values`` (one per row) for searching.

        Raises:
            InvalidArgumentError: If the column holds arrays, NaN or missing values.
        """
        if values.ndim != 1:
            raise InvalidArgumentError(
                f"A similarity condition compares one value per sample, but column {name!r} holds arrays of shape "
                f"{values.shape[1:]}. Add a scalar column (e.g. a summary of the array) and condition on it."
            )
        numeric = values.dtype.kind in "biuf"
        if numeric:
            keys = np.asarray(values, dtype=np.float64)
            if np.isnan(keys).any():
                raise InvalidArgumentError(
                    f"Column {name!r} has {int(np.isnan(keys).sum())} NaN values; a similarity condition cannot "
                    "compare missing values. Fill or drop those samples first."
                )
        else:
            if values.dtype == object and any(v is None for v in values[: min(len(values), 1 << 20)]):
                raise InvalidArgumentError(
                    f"Column {name!r} has missing (None) values; a similarity condition cannot compare them."
                )
            _, keys = np.unique(values, return_inverse=True)
            keys = keys.reshape(-1).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        position = np.empty(len(keys), dtype=np.int64)
        position[order] = np.arange(len(keys))
        return cls(name, values, numeric, keys, order, keys[order], position)

    def __len__(self) -> int:
        return len(self.keys)

    def key_diff(self, anchor_keys: np.ndarray, other_keys: np.ndarray) -> np.ndarray:
        """Distances between keys, as :meth:`SimilarityCondition.differences` computes them for values."""
        if self.numeric:
            return np.abs(anchor_keys - other_keys)
        return np.where(anchor_keys == other_keys, 0.0, np.inf)

    def window(self, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the sorted positions ``[lo, hi)`` of all rows within ``tolerance`` (equal, for categories).

        The window always holds the row itself. Boundaries are exact: they agree with the
        distance the conditions score (floating-point subtraction is monotonic, so the window is
        contiguous; ``searchsorted`` finds it and one or two vectorised passes settle the edges).
        Results are cached per tolerance.
        """
        cached = self._windows.get(tolerance)
        if cached is not None:
            return cached
        sk = self.sorted_keys
        n = len(sk)
        if not self.numeric:
            lo = np.searchsorted(sk, sk, "left")
            hi = np.searchsorted(sk, sk, "right")
        else:  # queries in sorted order: searchsorted walks the array once
            lo = np.searchsorted(sk, sk - tolerance, "left")
            hi = np.searchsorted(sk, sk + tolerance, "right")
            for _ in range(64):  # each pass moves an edge by one; rounding needs one or two
                grow_lo = (lo > 0) & (np.abs(sk - sk[np.maximum(lo - 1, 0)]) <= tolerance)
                shrink_lo = ~grow_lo & (np.abs(sk - sk[np.minimum(lo, n - 1)]) > tolerance)
                grow_hi = (hi < n) & (np.abs(sk - sk[np.minimum(hi, n - 1)]) <= tolerance)
                shrink_hi = ~grow_hi & (hi > 0) & (np.abs(sk - sk[np.maximum(hi - 1, 0)]) > tolerance)
                if not (grow_lo.any() or shrink_lo.any() or grow_hi.any() or shrink_hi.any()):
                    break
                lo = lo - grow_lo + shrink_lo
                hi = hi + grow_hi - shrink_hi
        window = (lo[self.position], hi[self.position])
        self._windows[tolerance] = window
        return window


@dataclass(frozen=True)
class Candidates:
    """Ranked candidates of every anchor, in compressed rows.

    Anchor ``a``'s candidates are ``positions[offsets[a]:offsets[a + 1]]`` (row positions in the
    source view), best first, with their weights in ``scores``.
    """

    offsets: np.ndarray
    positions: np.ndarray
    scores: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """Number of candidates per anchor."""
        return np.diff(self.offsets)

    @classmethod
    def from_padded(cls, positions: np.ndarray, scores: np.ndarray) -> Candidates:
        """From ``(n, k)`` matrices whose invalid entries are ``-1`` (valid entries first in each row)."""
        n, width = positions.shape
        valid = positions >= 0
        if width and valid.all():  # every anchor has all its candidates
            return cls(np.arange(0, n * width + 1, width, dtype=np.int64), positions.reshape(-1), scores.reshape(-1))
        counts = valid.sum(axis=1)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(offsets, positions[valid], scores[valid])


def _matches(condition: SimilarityCondition, diff: np.ndarray) -> np.ndarray:
    if condition.mode == "similar":
        return diff <= condition.tolerance
    return diff > condition.tolerance


# ---------------------------------------------------------------------------------------------
# one condition: tolerance windows in sorted order
# ---------------------------------------------------------------------------------------------
def sample_without_replacement(sizes: np.ndarray, wanted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row ``i``, ``min(wanted[i], sizes[i])`` distinct offsets in ``[0, sizes[i])``, uniformly at random.

    Column ``j`` draws ``r`` uniformly among the ``sizes - j`` values not drawn yet and maps it past
    the earlier picks (sorted ascending, each one at or below it shifts it up by one): an exact
    ordered sample without replacement, vectorised over rows, with no rejection loop.

    Returns:
        np.ndarray: ``(n, max(wanted))`` int64 offsets in random order, padded with -1.
    """
    n = len(sizes)
    take = np.minimum(wanted, sizes)
    width = int(take.max(initial=0))
    picks = np.full((width, n), -1, dtype=np.int64)  # one contiguous row per column
    for j in range(width):
        left = np.maximum(sizes - j, 1)
        value = np.minimum((rng.random(n) * left).astype(np.int64), left - 1)
        if j == 2:
            earlier = (np.minimum(picks[0], picks[1]), np.maximum(picks[0], picks[1]))
        else:
            earlier = picks[:j] if j < 2 else np.sort(picks[:j], axis=0)
        for excluded in earlier:
            value += value >= excluded
        np.copyto(picks[j], value, where=j < take)
    return picks.T


def _window_minus_self(lo: np.ndarray, hi: np.ndarray, position: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sorted positions of the ``offsets``-th members of the window with the anchor left out."""
    own = (position - lo)[:, None]
    out = lo[:, None] + offsets + (offsets >= own)
    return np.where(offsets >= 0, out, -1)


def _outside(lo: np.ndarray, hi: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sorted positions of the ``offsets``-th rows outside the window ``[lo, hi)``."""
    out = np.where(offsets < lo[:, None], offsets, offsets + (hi - lo)[:, None])
    return np.where(offsets >= 0, out, -1)


def _random_tiers(
    column: ConditionColumn, condition: SimilarityCondition, k: int, rng: np.random.Generator
) -> np.ndarray:
    n = len(column)
    lo, hi = column.window(condition.tolerance)
    inside = hi - lo - 1
    outside = n - (hi - lo)
    similar = condition.mode == "similar"
    first, second = (inside, outside) if similar else (outside, inside)
    want = np.full(n, k, dtype=np.int64)
    offsets = sample_without_replacement(first, want, rng)
    chosen = _window_minus_self(lo, hi, column.position, offsets) if similar else _outside(lo, hi, offsets)
    if condition.allow_fallback:
        rest = want - np.minimum(first, want)
        if rest.any():
            extra = sample_without_replacement(second, rest, rng)
            more = _outside(lo, hi, extra) if similar else _window_minus_self(lo, hi, column.position, extra)
            chosen = np.concatenate([chosen, more], axis=1)
            chosen = np.take_along_axis(chosen, np.argsort(chosen < 0, axis=1, kind="stable"), axis=1)[:, :k]
    return chosen


def _best_similar(column: ConditionColumn, condition: SimilarityCondition, k: int) -> np.ndarray:
    """Nearest-first walk outwards from each anchor's sorted position (``k`` steps)."""
    n = len(column)
    keys, sk = column.keys, column.sorted_keys
    left = column.position - 1
    right = column.position + 1
    chosen = np.full((n, k), -1, dtype=np.int64)
    for step in range(min(k, n - 1)):
        d_left = np.where(left >= 0, column.key_diff(keys, sk[np.maximum(left, 0)]), np.inf)
        d_right = np.where(right < n, column.key_diff(keys, sk[np.minimum(right, n - 1)]), np.inf)
        go_left = (d_left <= d_right) & (left >= 0)
        pick = np.where(go_left, left, right)
        diff = np.where(go_left, d_left, d_right)
        ok = (pick >= 0) & (pick < n) & (condition.allow_fallback | _matches(condition, diff))
        chosen[:, step] = np.where(ok, pick, -1)
        left = left - go_left
        right = right + ~go_left
    return chosen


def _best_dissimilar(column: ConditionColumn, condition: SimilarityCondition, k: int) -> np.ndarray:
    """Farthest-first walk inwards from both ends of the sorted values (``k`` steps), skipping the anchor."""
    n = len(column)
    keys, sk, own = column.keys, column.sorted_keys, column.position
    left = np.zeros(n, dtype=np.int64)
    right = np.full(n, n - 1, dtype=np.int64)
    chosen = np.full((n, k), -1, dtype=np.int64)
    for step in range(min(k, n - 1)):
        left = left + (left == own)
        right = right - (right == own)
        alive = left <= right
        d_left = column.key_diff(keys, sk[np.clip(left, 0, n - 1)])
        d_right = column.key_diff(keys, sk[np.clip(right, 0, n - 1)])
        go_left = d_left >= d_right
        pick = np.where(go_left, left, right)
        diff = np.where(go_left, d_left, d_right)
        ok = alive & (condition.allow_fallback | _matches(condition, diff))
        chosen[:, step] = np.where(ok, pick, -1)
        left = left + (alive & go_left)
        right = right - (alive & ~go_left)
    return chosen


def _single_condition(
    column: ConditionColumn, condition: SimilarityCondition, k: int, best: bool, rng: np.random.Generator
) -> Candidates:
    if best:
        sorted_pos = (_best_similar if condition.mode == "similar" else _best_dissimilar)(column, condition, k)
    else:
        sorted_pos = _random_tiers(column, condition, k, rng)
    valid = sorted_pos >= 0
    rows = np.where(valid, column.order[np.maximum(sorted_pos, 0)], -1)
    if condition.allow_fallback:
        diff = column.key_diff(column.keys[:, None], column.keys[np.maximum(rows, 0)])
        scores = np.where(valid, condition.weights(diff), 0.0)
    else:  # every candidate kept is a match, and without fallback a match scores exactly 1
        scores = valid.astype(np.float64)
    return Candidates.from_padded(rows, scores)


# ---------------------------------------------------------------------------------------------
# any conditions: blocks of candidate pairs
# ---------------------------------------------------------------------------------------------
def _pair_diff(column: ConditionColumn, condition: SimilarityCondition, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    if condition.metric is not None:
        return condition.differences(column.values[a], column.values[c])
    return column.key_diff(column.keys[a], column.keys[c])


def _blocked_pairs(
    columns: list[ConditionColumn],
    conditions: list[SimilarityCondition],
    k: int | None,
    best: bool,
    rng: np.random.Generator,
    progress: Callable[[int], None],
) -> Candidates:
    n = len(columns[0])
    drivers = [i for i, c in enumerate(conditions) if c.metric is None and c.mode == "similar" and not c.allow_fallback]
    windows = {i: columns[i].window(conditions[i].tolerance) for i in drivers}
    driver = min(drivers, key=lambda i: int((windows[i][1] - windows[i][0]).sum())) if drivers else None
    if driver is not None:
        lo, hi = windows[driver]
        sizes = hi - lo
        ends = np.cumsum(sizes)
        cuts = np.searchsorted(ends, np.arange(PAIR_BLOCK, int(ends[-1]) + PAIR_BLOCK, PAIR_BLOCK), "right")
        bounds = np.unique(np.concatenate([[0], np.maximum(cuts, 1), [n]]).clip(0, n))
    else:
        step = max(1, PAIR_BLOCK // max(n, 1))
        bounds = np.unique(np.append(np.arange(0, n, step), n))
    kept_anchor, kept_row, kept_score = [], [], []
    for start, stop in itertools.pairwise(bounds.tolist()):
        anchors = np.arange(start, stop, dtype=np.int64)
        if driver is not None:
            block_sizes = sizes[start:stop]
            a = np.repeat(anchors, block_sizes)
            within = np.arange(len(a)) - np.repeat(np.cumsum(block_sizes) - block_sizes, block_sizes)
            c = columns[driver].order[np.repeat(lo[start:stop], block_sizes) + within]
        else:
            a = np.repeat(anchors, n)
            c = np.tile(np.arange(n, dtype=np.int64), len(anchors))
        other = a != c
        a, c = a[other], c[other]
        valid = np.ones(len(a), dtype=bool)
        tier = np.zeros(len(a), dtype=np.int64)
        total = np.zeros(len(a), dtype=np.float64)
        for column, condition in zip(columns, conditions, strict=True):
            diff = _pair_diff(column, condition, a, c)
            matched = _matches(condition, diff)
            if not condition.allow_fallback:
                valid &= matched
            tier += matched
            total += condition.weights(diff)
        a, c, tier, score = a[valid], c[valid], tier[valid], total[valid] / len(conditions)
        tie_break = -score if best else rng.random(len(a))
        ranked = np.lexsort((tie_break, -tier, a))
        a, c, score = a[ranked], c[ranked], score[ranked]
        if k is not None and len(a):
            first = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
            rank = np.arange(len(a)) - np.repeat(first, np.diff(np.r_[first, len(a)]))
            keep = rank < k
            a, c, score = a[keep], c[keep], score[keep]
        kept_anchor.append(a)
        kept_row.append(c)
        kept_score.append(score)
        progress(int(stop - start))
    anchor = np.concatenate(kept_anchor) if kept_anchor else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(anchor, minlength=n), out=offsets[1:])
    rows = np.concatenate(kept_row) if kept_row else np.zeros(0, dtype=np.int64)
    scores = np.concatenate(kept_score) if kept_score else np.zeros(0)
    return Candidates(offsets, rows, scores)


def find_candidates(
    columns: list[ConditionColumn],
    conditions: list[SimilarityCondition],
    k: int | None,
    *,
    best: bool,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> Candidates:
    """Up to ``k`` ranked candidates per anchor for one role (all candidates if ``k`` is None).

    Args:
        columns: The compared column of each condition (same rows, same order).
        conditions: The role's conditions; a candidate must match every condition that does not
            allow fallback.
        k: Candidates to keep per anchor, or None for all.
        best: Keep the best-scoring candidates (ties in sorted order) instead of random ones.
        rng: Generator for random choices.
        progress: Called with the number of anchors finished (for a progress bar).

    Returns:
        Candidates: Ranked by tier (number of matched conditions), then score or at random.
    """
    report = progress or (lambda done: None)
    if len(conditions) == 1 and conditions[0].metric is None and k is not None:
        found = _single_condition(columns[0], conditions[0], k, best, rng)
        report(len(columns[0]))
        return found
    return _blocked_pairs(columns, conditions, k, best, rng, report)
