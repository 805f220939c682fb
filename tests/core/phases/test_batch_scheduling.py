from __future__ import annotations

import pytest

from modularml.phases import BatchSchedulingPolicy, iter_schedule

S1 = ["b1", "b2", "b3"]
S2 = ["c1", "c2"]


def _sequence(policy: str) -> list:
    out = []
    for step in iter_schedule(policy, [len(S1), len(S2)]):
        active = [src[i] for src, i in zip((S1, S2), step, strict=True) if i is not None]
        out.append(tuple(active) if len(active) > 1 else active[0])
    return out


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("zip_strict", [("b1", "c1"), ("b2", "c2")]),
        ("zip_cycle", [("b1", "c1"), ("b2", "c2"), ("b3", "c1")]),
        ("alternate_strict", ["b1", "c1", "b2", "c2"]),
        ("alternate_cycle", ["b1", "c1", "b2", "c2", "b3", "c1"]),
    ],
)
def test_policies_produce_the_documented_sequences(policy, expected) -> None:
    assert _sequence(policy) == expected


def test_alternating_steps_mark_inactive_samplers_none() -> None:
    steps = list(iter_schedule(BatchSchedulingPolicy.ALTERNATE_STRICT, [3, 2]))
    assert steps == [(0, None), (None, 0), (1, None), (None, 1)]


def test_single_sampler_runs_every_batch_under_every_policy() -> None:
    for policy in BatchSchedulingPolicy:
        assert [s[0] for s in iter_schedule(policy, [3])] == [0, 1, 2]


def test_policy_from_value_and_errors() -> None:
    assert BatchSchedulingPolicy.from_value("ZIP_CYCLE") is BatchSchedulingPolicy.ZIP_CYCLE
    assert BatchSchedulingPolicy.ALTERNATE_CYCLE.is_alternating
    with pytest.raises(ValueError, match="zip_strict"):
        BatchSchedulingPolicy.from_value("round_robin")
    with pytest.raises(ValueError, match="batch count"):
        list(iter_schedule("zip_strict", []))
    assert list(iter_schedule("zip_cycle", [2, 0])) == []
