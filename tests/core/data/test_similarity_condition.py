from __future__ import annotations

import math

import numpy as np
import pytest

import modularml as mml
from modularml.errors import InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.similarity import SimilarityCondition


def _abs_diff(a, b):
    return a - b


def test_defaults_match_the_reference() -> None:
    c = SimilarityCondition()
    assert (c.mode, c.tolerance, c.metric, c.weight_mode) == ("similar", 0.0, None, "binary")
    assert (c.max_weight, c.min_weight, c.allow_fallback) == (1.0, 0.0, False)
    assert mml.SimilarityCondition is SimilarityCondition


@pytest.mark.parametrize("weight_mode", ["binary", "linear", "exp"])
@pytest.mark.parametrize("mode", ["similar", "dissimilar"])
def test_without_fallback_scores_are_one_or_zero(mode: str, weight_mode: str) -> None:
    c = SimilarityCondition(mode=mode, tolerance=0.5, weight_mode=weight_mode, max_weight=50)
    near, far = c.score(1.0, 1.2), c.score(1.0, 3.0)
    assert (near, far) == ((1.0, 0.0) if mode == "similar" else (0.0, 1.0))


@pytest.mark.parametrize("weight_mode", ["binary", "linear", "exp"])
@pytest.mark.parametrize("mode", ["similar", "dissimilar"])
def test_weight_semantics_with_fallback(mode: str, weight_mode: str) -> None:
    c = SimilarityCondition(mode=mode, tolerance=0.5, weight_mode=weight_mode, max_weight=100, allow_fallback=True)
    diffs = np.array([0.0, 0.1, 0.25, 0.5, 0.500001, 0.75, 2.0, 10.0])
    scores = c.score_array(0.0, diffs)
    matches = diffs <= 0.5 if mode == "similar" else diffs > 0.5
    assert np.all(scores[matches] >= 1.0)  # matches >= 1
    assert np.all(scores[~matches] < 1.0)  # fallbacks < 1
    assert np.all(scores >= 0.0)
    assert np.all(scores <= 100.0)
    if weight_mode != "binary":  # better matches -> larger weight
        ranked = scores[matches] if mode == "similar" else scores[matches][::-1]
        assert np.all(np.diff(ranked) <= 0)
    assert [c.score(0.0, d) for d in diffs] == pytest.approx(scores.tolist())


def test_documented_formulas() -> None:
    linear = SimilarityCondition(tolerance=0.5, weight_mode="linear", max_weight=100, allow_fallback=True)
    assert linear.score(0.0, 0.2) == pytest.approx(2.5)  # tolerance / diff
    assert linear.score(0.0, 1.0) == pytest.approx(0.5)
    assert linear.score(3.0, 3.0) == 100.0  # perfect match -> max_weight
    exp = SimilarityCondition(tolerance=0.5, weight_mode="exp", max_weight=100, allow_fallback=True)
    assert exp.score(0.0, 0.2) == pytest.approx(math.exp(1 - 0.4))
    dis = SimilarityCondition(
        mode="dissimilar", tolerance=0.5, weight_mode="linear", max_weight=100, allow_fallback=True
    )
    assert dis.score(0.0, 1.0) == pytest.approx(2.0)  # diff / tolerance
    dis_exp = SimilarityCondition(
        mode="dissimilar", tolerance=0.5, weight_mode="exp", max_weight=100, allow_fallback=True
    )
    assert dis_exp.score(0.0, 1.0) == pytest.approx(math.e)


def test_max_and_min_weight_clip() -> None:
    c = SimilarityCondition(tolerance=1.0, weight_mode="linear", allow_fallback=True)  # max_weight 1.0
    assert c.score(0.0, 0.01) == 1.0
    c = SimilarityCondition(tolerance=1.0, weight_mode="linear", max_weight=3, min_weight=0.4, allow_fallback=True)
    assert c.score(0.0, 0.01) == 3.0
    assert c.score(0.0, 100.0) == 0.4


def test_binary_fallback_weight() -> None:
    assert SimilarityCondition(allow_fallback=True).score(1, 2) == pytest.approx(0.1)
    assert SimilarityCondition(allow_fallback=True, min_weight=0.3).score(1, 2) == pytest.approx(0.3)
    assert SimilarityCondition(allow_fallback=True).score(1, 1) == 1.0


def test_non_numeric_values_use_equality() -> None:
    c = SimilarityCondition()
    assert c.score("a", "a") == 1.0
    assert c.score("a", "b") == 0.0
    assert c.score_array(np.array(["a", "b", "a"], dtype=object), "a").tolist() == [1.0, 0.0, 1.0]
    dis = SimilarityCondition(mode="dissimilar")
    assert dis.score("a", "b") == 1.0
    assert dis.score("a", "a") == 0.0


def test_array_samples_compare_by_largest_difference() -> None:
    c = SimilarityCondition(tolerance=0.1)
    assert c.score(np.array([1.0, 2.0]), np.array([1.05, 2.05])) == 1.0
    assert c.score(np.array([1.0, 2.0]), np.array([1.05, 2.5])) == 0.0


def test_custom_metric_scalar_and_vectorised() -> None:
    calls = []

    def scalar_only(a: float, b: float) -> float:
        calls.append(1)
        return float(a) - float(b)

    c = SimilarityCondition(tolerance=1.0, metric=scalar_only)
    assert c.score(5.0, 4.5) == 1.0
    assert c.score_array(np.array([0.0, 5.0]), 4.5).tolist() == [0.0, 1.0]
    vec = SimilarityCondition(tolerance=1.0, metric=np.subtract)
    assert vec.score_array(np.arange(4.0), 2.0).tolist() == [0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mode": "close"}, InvalidArgumentError, "mode must be one of"),
        ({"weight_mode": "uniform"}, InvalidArgumentError, "weight_mode must be one of"),
        ({"tolerance": -1}, InvalidArgumentError, "tolerance"),
        ({"max_weight": 0.5}, InvalidArgumentError, "min_weight < 1 <= max_weight"),
        ({"min_weight": 1.0}, InvalidArgumentError, "min_weight < 1 <= max_weight"),
        ({"metric": 3}, InvalidTypeError, "metric must be a callable"),
        ({"tolerance": "1"}, InvalidTypeError, "tolerance must be a number"),
    ],
)
def test_invalid_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        SimilarityCondition(**kwargs)


def test_config_round_trip() -> None:
    c = SimilarityCondition(mode="dissimilar", tolerance=0.2, metric=_abs_diff, weight_mode="exp", max_weight=5)
    config = c.get_config()
    assert config["metric"] == f"{__name__}:_abs_diff"
    with pytest.raises(SerializationError, match=r"Refusing to import .*_abs_diff"):
        SimilarityCondition.from_config(config)  # a function named by a config runs only when allowed
    assert SimilarityCondition.from_config(config, allow_packaged_code=True) == c
    assert SimilarityCondition.from_config(SimilarityCondition().get_config()) == SimilarityCondition()
    lam = SimilarityCondition(metric=lambda a, b: a - b)
    assert callable(lam.get_config()["metric"])  # kept as the object: usable in memory, not savable
    with pytest.raises(InvalidArgumentError, match="not an importable function"):
        SimilarityCondition(metric="__main__:f")
