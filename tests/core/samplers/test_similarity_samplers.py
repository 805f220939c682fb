"""PairedSampler, TripletSampler and NSampler: roles meet their conditions and weigh what score() says."""

from __future__ import annotations

import numpy as np
import pytest

from modularml.batches import BatchView
from modularml.data import FeatureSet
from modularml.samplers import NSampler, PairedSampler, TripletSampler
from modularml.similarity import SimilarityCondition as Cond


def _fs(n: int = 300, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    return FeatureSet.from_dict(
        "samples",
        {
            "x": rng.random((n, 2), dtype=np.float32),
            "soh": np.round(rng.random(n), 3),
            "cell": rng.choice(["A", "B", "C", "D"], n),
            "temp": rng.integers(20, 30, n),
        },
        "x",
        "soh",
        ["cell", "temp"],
    )


def _column(fs: FeatureSet, key: str) -> np.ndarray:
    return fs.get_data("dict_numpy", include_domain_prefix=False, include_rep_suffix=False)[key]


def _all(batches: list[BatchView], role: str) -> np.ndarray:
    return np.concatenate([b.role_indices[role] for b in batches])


def _weights(batches: list[BatchView], role: str) -> np.ndarray:
    return np.concatenate([b.get_role_weights(role) for b in batches])


def test_triplet_roles_satisfy_their_conditions_and_weights_equal_score() -> None:
    fs = _fs()
    soh = _column(fs, "soh")
    pos = Cond(tolerance=0.02, weight_mode="linear", max_weight=5.0)
    neg = Cond(mode="dissimilar", tolerance=0.1, weight_mode="exp", max_weight=3.0)
    sampler = TripletSampler({"soh": pos}, {"soh": neg}, batch_size=32, shuffle=True, seed=0, source=fs)
    assert sampler.role_names == ["anchor", "positive", "negative"]
    batches = sampler.get_batches()
    a, p, n = (_all(batches, r) for r in sampler.role_names)
    assert (np.abs(soh[a] - soh[p]) <= 0.02).all()
    assert (np.abs(soh[a] - soh[n]) > 0.1).all()
    assert (a != p).all()
    np.testing.assert_allclose(
        _weights(batches, "positive"), [pos.score(x, y) for x, y in zip(soh[a], soh[p], strict=True)], 1e-6
    )
    np.testing.assert_allclose(
        _weights(batches, "negative"), [neg.score(x, y) for x, y in zip(soh[a], soh[n], strict=True)], 1e-6
    )
    np.testing.assert_array_equal(_weights(batches, "anchor"), 1.0)
    counts = np.bincount(a, minlength=len(soh))
    assert counts.max() <= 3


def test_pairs_are_distinct_and_at_most_max_pairs_per_anchor() -> None:
    fs = _fs()
    soh = _column(fs, "soh")
    sampler = PairedSampler({"soh": Cond(tolerance=0.05)}, max_pairs_per_anchor=4, batch_size=50, seed=1, source=fs)
    batches = sampler.get_batches()
    a, p = _all(batches, "anchor"), _all(batches, "pair")
    pairs = set(zip(a.tolist(), p.tolist(), strict=True))
    assert len(pairs) == len(a)  # no pair drawn twice
    window = np.abs(soh[:, None] - soh[None, :]) <= 0.05
    available = window.sum(axis=1) - 1
    np.testing.assert_array_equal(np.bincount(a, minlength=len(soh)), np.minimum(available, 4))
    np.testing.assert_array_equal(_weights(batches, "pair"), 1.0)


def test_choose_best_only_takes_the_nearest() -> None:
    fs = _fs()
    soh = _column(fs, "soh")
    cond = Cond(tolerance=0.2, weight_mode="linear", max_weight=1000.0)
    sampler = PairedSampler({"soh": cond}, max_pairs_per_anchor=2, choose_best_only=True, batch_size=64, source=fs)
    a, p = (_all(sampler.get_batches(), r) for r in ("anchor", "pair"))
    diffs = np.abs(soh[:, None] - soh[None, :])
    np.fill_diagonal(diffs, np.inf)
    second_nearest = np.sort(diffs, axis=1)[:, 1]
    assert (np.abs(soh[a] - soh[p]) <= second_nearest[a] + 1e-12).all()


def test_choose_best_dissimilar_takes_the_farthest() -> None:
    fs = _fs()
    soh = _column(fs, "soh")
    cond = Cond(mode="dissimilar", tolerance=0.1)
    sampler = PairedSampler({"soh": cond}, max_pairs_per_anchor=1, choose_best_only=True, batch_size=64, source=fs)
    a, p = (_all(sampler.get_batches(), r) for r in ("anchor", "pair"))
    farthest = np.abs(soh[:, None] - soh[None, :]).max(axis=1)
    np.testing.assert_allclose(np.abs(soh[a] - soh[p]), farthest[a])


def test_fallback_fills_up_with_down_weighted_non_matches() -> None:
    soh = np.array([0.0, 0.01, 0.5, 0.9, 0.95])
    fs = FeatureSet.from_dict("few", {"x": np.arange(5.0), "soh": soh}, "x", "soh")
    cond = Cond(tolerance=0.02, allow_fallback=True, weight_mode="linear", max_weight=10.0, min_weight=0.05)
    sampler = PairedSampler({"soh": cond}, max_pairs_per_anchor=3, batch_size=100, seed=0, source=fs)
    batch = sampler.get_batches()[0]
    a, p, w = batch.role_indices["anchor"], batch.role_indices["pair"], batch.get_role_weights("pair")
    assert len(a) == 15  # every anchor gets 3 partners
    np.testing.assert_allclose(w, [cond.score(soh[i], soh[j]) for i, j in zip(a, p, strict=True)], rtol=1e-6)
    first_of_anchor0 = p[a == 0][0]
    assert first_of_anchor0 == 1  # the match ranks before the fallbacks
    assert (w[np.abs(soh[a] - soh[p]) > 0.02] < 1).all()


def test_impossible_conditions_raise_a_clear_error() -> None:
    fs = _fs()
    never = Cond(mode="dissimilar", tolerance=5.0)
    sampler = PairedSampler({"soh": never}, source=fs)
    with pytest.raises(ValueError, match=r"No anchor found a 'pair' sample.*'soh': dissimilar beyond tolerance 5"):
        sampler.materialize_batches()
    unique = FeatureSet.from_dict("unique", {"x": np.arange(4.0), "id": ["a", "b", "c", "d"]}, "x", [], "id")
    with pytest.raises(ValueError, match="allow_fallback=True"):
        PairedSampler({"id": Cond()}, source=unique).get_batches()
    lonely = FeatureSet.from_dict("lonely", {"x": [1.0]}, "x", [])
    with pytest.raises(ValueError, match="at least 2 samples"):
        PairedSampler({"x": Cond(tolerance=1)}, source=lonely).get_batches()


def test_anchors_without_a_partner_in_every_role_are_left_out() -> None:
    soh = np.array([0.0, 0.001, 0.5, 0.9])
    fs = FeatureSet.from_dict("sparse", {"x": np.arange(4.0), "soh": soh}, "x", "soh")
    sampler = TripletSampler(
        {"soh": Cond(tolerance=0.01)}, {"soh": Cond(mode="dissimilar", tolerance=0.2)}, batch_size=10, source=fs
    )
    batch = sampler.get_batches()[0]
    assert sorted(batch.role_indices["anchor"].tolist()) == [0, 1]  # 0.5 and 0.9 have no positive
    disjoint = FeatureSet.from_dict("disjoint", {"soh": soh, "t": [0, 1, 5, 5]}, "soh", [], "t")
    roles = {"close": {"soh": Cond(tolerance=0.01)}, "twin": {"t": Cond()}}  # anchors {0, 1} and {2, 3}
    with pytest.raises(ValueError, match="for every role"):
        NSampler(roles, source=disjoint).get_batches()


def test_roles_are_aligned_to_the_scarcer_role() -> None:
    fs = _fs()
    soh = _column(fs, "soh")
    sampler = NSampler(
        {"close": {"soh": Cond(tolerance=0.003)}, "far": {"soh": Cond(mode="dissimilar", tolerance=0.3)}},
        max_samples_per_anchor=5,
        batch_size=1000,
        seed=0,
        source=fs,
    )
    batch = sampler.get_batches()[0]
    a = batch.role_indices["anchor"]
    close = (np.abs(soh[:, None] - soh[None, :]) <= 0.003).sum(axis=1) - 1
    np.testing.assert_array_equal(np.bincount(a, minlength=len(soh)), np.minimum(close, 5))


def test_several_conditions_categorical_and_partial_matches() -> None:
    fs = _fs()
    soh, cell, temp = _column(fs, "soh"), _column(fs, "cell"), _column(fs, "temp")
    conds = {"soh": Cond(tolerance=0.1), "cell": Cond(), "temp": Cond(tolerance=1, allow_fallback=True)}
    sampler = PairedSampler(conds, max_pairs_per_anchor=3, batch_size=64, seed=5, source=fs)
    batches = sampler.get_batches()
    a, p = _all(batches, "anchor"), _all(batches, "pair")
    assert (np.abs(soh[a] - soh[p]) <= 0.1).all()
    assert (cell[a] == cell[p]).all()
    values = {k: _column(fs, k) for k in conds}
    expected = [
        np.mean([c.score(values[k][i], values[k][j]) for k, c in conds.items()]) for i, j in zip(a, p, strict=True)
    ]
    np.testing.assert_allclose(_weights(batches, "pair"), expected, rtol=1e-6)
    # full matches (temp within 1) rank before partial ones for every anchor
    full = np.abs(temp[a] - temp[p]) <= 1
    for anchor in np.unique(a):
        ranks = full[a == anchor]
        assert list(ranks) == sorted(ranks, reverse=True)


def test_custom_metric_uses_the_blocked_search() -> None:
    fs = _fs(n=120)
    soh = _column(fs, "soh")
    cond = Cond(tolerance=0.01, metric=lambda x, y: (x - y) * 2.0)
    sampler = PairedSampler({"soh": cond}, batch_size=500, seed=0, source=fs)
    a, p = (_all(sampler.get_batches(), r) for r in ("anchor", "pair"))
    assert len(a)
    assert (np.abs(soh[a] - soh[p]) * 2 <= 0.01).all()


def test_max_samples_none_keeps_every_match() -> None:
    soh = np.array([0.1, 0.11, 0.12, 0.5, 0.51])
    fs = FeatureSet.from_dict("all", {"x": np.arange(5.0), "soh": soh}, "x", "soh")
    sampler = PairedSampler({"soh": Cond(tolerance=0.025)}, max_pairs_per_anchor=None, batch_size=100, source=fs)
    batch = sampler.get_batches()[0]
    pairs = sorted(zip(batch.role_indices["anchor"].tolist(), batch.role_indices["pair"].tolist(), strict=True))
    assert pairs == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3)]


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    fs = _fs()

    def run(seed: int) -> list[np.ndarray]:
        sampler = TripletSampler(
            {"soh": Cond(tolerance=0.05)}, {"soh": Cond(mode="dissimilar", tolerance=0.05)}, batch_size=20, seed=seed
        )
        sampler.bind_sources([fs])
        return [b.role_indices[r] for b in sampler.get_batches() for r in b.roles]

    first, again, other = run(7), run(7), run(8)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=False))


def test_group_by_and_stratify_by_use_the_anchor_role() -> None:
    fs = _fs()
    cell = _column(fs, "cell")
    sampler = PairedSampler({"soh": Cond(tolerance=0.05)}, batch_size=8, group_by="cell", seed=0, source=fs)
    for batch in sampler.get_batches():
        assert len(set(cell[batch.role_indices["anchor"]])) == 1
    with pytest.raises(ValueError, match="not a role"):
        PairedSampler({"soh": Cond()}, group_by="cell", group_by_role="default")


def test_condition_mapping_is_validated() -> None:
    with pytest.raises(ValueError, match="may not name the role 'anchor'"):
        NSampler({"anchor": {"soh": Cond()}})
    with pytest.raises(ValueError, match="non-empty mapping"):
        NSampler({"pos": {}})
    with pytest.raises(TypeError, match="SimilarityCondition"):
        NSampler({"pos": {"soh": 0.1}})
    with pytest.raises(ValueError, match="role name"):
        NSampler({"my role": {"soh": Cond()}})
    fs = FeatureSet.from_dict("arr", {"x": np.zeros((5, 3)), "y": np.arange(5.0)}, "x", "y")
    with pytest.raises(ValueError, match="holds arrays of shape"):
        PairedSampler({"x": Cond()}, source=fs).get_batches()
    nan = FeatureSet.from_dict("nan", {"x": np.arange(3.0), "y": [0.0, np.nan, 1.0]}, "x", "y")
    with pytest.raises(ValueError, match="NaN"):
        PairedSampler({"y": Cond(tolerance=1)}, source=nan).get_batches()
