"""The vectorised candidate search against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from modularml.samplers import matching
from modularml.samplers.matching import ConditionColumn, find_candidates, sample_without_replacement
from modularml.similarity import SimilarityCondition as Cond


def test_windows_agree_with_the_scored_distance_at_float_edges() -> None:
    rng = np.random.default_rng(0)
    values = np.round(rng.random(400), 2) * 0.3  # many exact ties and edge cases like 0.3 - 0.1
    column = ConditionColumn.build("v", values)
    for tolerance in (0.0, 0.03, 0.1, 0.061):
        lo, hi = column.window(tolerance)
        inside = np.abs(values[:, None] - values[None, :]) <= tolerance
        np.testing.assert_array_equal(hi - lo, inside.sum(axis=1))
        sorted_inside = inside[:, column.order]
        for row in range(0, 400, 37):
            assert sorted_inside[row, lo[row] : hi[row]].all()


def test_sampling_without_replacement_is_distinct_and_uniform() -> None:
    rng = np.random.default_rng(1)
    sizes = np.array([4] * 24_000 + [2] * 100 + [0] * 5)
    picks = sample_without_replacement(sizes, np.full(len(sizes), 3), rng)
    full = picks[:24_000]
    assert all(len(set(row)) == 3 for row in full[:2000].tolist())
    assert ((full >= 0) & (full < 4)).all()
    orders, counts = np.unique(full, axis=0, return_counts=True)
    assert len(orders) == 24  # every ordered triple of 4 values
    assert counts.min() > 800
    assert counts.max() < 1200
    assert (np.sort(picks[24_000:24_100, :2], axis=1) == [0, 1]).all()
    assert (picks[24_000:24_100, 2] == -1).all()
    assert (picks[-5:] == -1).all()


@pytest.mark.parametrize("mode", ["similar", "dissimilar"])
@pytest.mark.parametrize("fallback", [False, True])
def test_sorted_search_and_blocked_search_find_valid_candidates(mode: str, fallback: bool) -> None:
    rng = np.random.default_rng(2)
    values = rng.random(150)
    column = ConditionColumn.build("v", values)
    cond = Cond(mode=mode, tolerance=0.05, allow_fallback=fallback, weight_mode="linear", max_weight=4.0)
    fast = find_candidates([column], [cond], 3, best=False, rng=np.random.default_rng(0))
    assert fast.counts.max() == 3
    blocked = matching._blocked_pairs([column], [cond], 3, False, np.random.default_rng(0), lambda done: None)
    diff = np.abs(values[:, None] - values[None, :])
    match = diff <= 0.05 if mode == "similar" else diff > 0.05
    np.fill_diagonal(match, False)
    available = match.sum(axis=1)
    for found in (fast, blocked):
        anchors = np.repeat(np.arange(150), found.counts)
        assert (found.positions != anchors).all()
        np.testing.assert_allclose(found.scores, cond.weights(diff[anchors, found.positions]))
        expected = np.full(150, 3) if fallback else np.minimum(available, 3)
        np.testing.assert_array_equal(found.counts, expected)
        for a in range(150):  # matches first
            ranked = match[a, found.positions[found.offsets[a] : found.offsets[a + 1]]]
            assert list(ranked) == sorted(ranked, reverse=True)


def test_blocks_of_any_size_give_the_same_best_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    columns = [ConditionColumn.build("a", rng.random(90)), ConditionColumn.build("b", rng.integers(0, 3, 90))]
    conds = [Cond(tolerance=0.2, weight_mode="exp", max_weight=9.0), Cond()]
    one = matching._blocked_pairs(columns, conds, 2, True, rng, lambda done: None)
    monkeypatch.setattr(matching, "PAIR_BLOCK", 7)
    done: list[int] = []
    many = matching._blocked_pairs(columns, conds, 2, True, rng, done.append)
    assert sum(done) == 90
    assert len(done) > 5
    np.testing.assert_array_equal(one.offsets, many.offsets)
    np.testing.assert_array_equal(one.positions, many.positions)
    np.testing.assert_allclose(one.scores, many.scores)


@pytest.mark.parametrize("mode", ["similar", "dissimilar"])
@pytest.mark.parametrize("fallback", [False, True])
def test_best_candidates_match_brute_force(mode: str, fallback: bool) -> None:
    values = np.random.default_rng(4).random(120)
    column = ConditionColumn.build("v", values)
    cond = Cond(mode=mode, tolerance=0.3, allow_fallback=fallback, weight_mode="linear", max_weight=50.0)
    found = find_candidates([column], [cond], 4, best=True, rng=np.random.default_rng(0))
    diff = np.abs(values[:, None] - values[None, :])
    score = cond.weights(diff)
    np.fill_diagonal(score, -1.0)
    for a in range(120):
        got = found.positions[found.offsets[a] : found.offsets[a + 1]]
        valid = np.flatnonzero(score[a] > (-1.0 if fallback else 0.5))
        ranked = valid[np.argsort(-score[a, valid], kind="stable")]
        np.testing.assert_allclose(np.sort(score[a, got]), np.sort(score[a, ranked[:4]]))


def test_categorical_best_and_fallback() -> None:
    values = np.array(["a", "b", "a", "c", "a", "b"], dtype=object)
    column = ConditionColumn.build("c", values)
    same = find_candidates([column], [Cond()], 5, best=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same.counts, [2, 1, 2, 0, 2, 1])
    other = find_candidates([column], [Cond(mode="dissimilar")], 5, best=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(other.counts, [3, 4, 3, 5, 3, 4])
    for a in range(6):
        got = other.positions[other.offsets[a] : other.offsets[a + 1]]
        assert (values[got] != values[a]).all()
    loose = find_candidates([column], [Cond(allow_fallback=True)], 5, best=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(loose.counts, [5] * 6)
    first = loose.positions[loose.offsets[0] : loose.offsets[0] + 2]
    assert set(values[first]) == {"a"}
