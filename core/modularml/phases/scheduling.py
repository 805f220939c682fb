"""``BatchSchedulingPolicy``: how a training step draws batches from several samplers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import Enum

from modularml.errors import InvalidArgumentError

__all__ = ["BatchSchedulingPolicy", "iter_schedule"]

#: One step: for every sampler, the index of its batch, or None where the sampler is inactive.
Step = tuple[int | None, ...]


class BatchSchedulingPolicy(Enum):
    """How the batches of several samplers are combined into training steps.

    For samplers ``S1 = [b1, b2, b3]`` and ``S2 = [c1, c2]``:

    - ``ZIP_STRICT``: ``(b1, c1), (b2, c2)`` (stops with the shortest sampler).
    - ``ZIP_CYCLE``: ``(b1, c1), (b2, c2), (b3, c1)`` (shorter samplers cycle).
    - ``ALTERNATE_STRICT``: ``b1, c1, b2, c2`` (one sampler per step, until the shortest runs out).
    - ``ALTERNATE_CYCLE``: ``b1, c1, b2, c2, b3, c1`` (one per step, shorter samplers cycle).

    In an alternating step the inactive samplers contribute fully masked batches.
    """

    ZIP_STRICT = "zip_strict"
    ZIP_CYCLE = "zip_cycle"
    ALTERNATE_STRICT = "alternate_strict"
    ALTERNATE_CYCLE = "alternate_cycle"

    @classmethod
    def from_value(cls, value: str | BatchSchedulingPolicy) -> BatchSchedulingPolicy:
        """Normalise a policy name (case-insensitive) or member.

        Raises:
            ValueError: If ``value`` names no policy.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        raise InvalidArgumentError(f"Unknown batch_schedule {value!r}; use one of {[member.value for member in cls]}.")

    @property
    def is_alternating(self) -> bool:
        """Whether each step activates exactly one sampler."""
        return self in (BatchSchedulingPolicy.ALTERNATE_STRICT, BatchSchedulingPolicy.ALTERNATE_CYCLE)


def iter_schedule(policy: str | BatchSchedulingPolicy, n_batches: Sequence[int]) -> Iterator[Step]:
    """The steps of one epoch for samplers with ``n_batches[k]`` batches each.

    Args:
        policy: The scheduling policy.
        n_batches: Number of batches of every sampler, in binding order.

    Yields:
        tuple[int | None, ...]: Per sampler, its batch index in this step, or None if inactive.

    Raises:
        ValueError: If there is no sampler or a count is negative.
    """
    policy = BatchSchedulingPolicy.from_value(policy)
    counts = [int(n) for n in n_batches]
    if not counts or any(n < 0 for n in counts):
        raise InvalidArgumentError(f"iter_schedule() needs one non-negative batch count per sampler; got {counts}.")
    if min(counts) == 0:
        return
    cycle = policy in (BatchSchedulingPolicy.ZIP_CYCLE, BatchSchedulingPolicy.ALTERNATE_CYCLE)
    n_rounds = max(counts) if cycle else min(counts)
    if not policy.is_alternating:
        if len(counts) == 1:
            yield from zip(range(n_rounds))
            return
        for i in range(n_rounds):
            yield tuple([i % count for count in counts])
        return
    for i in range(n_rounds):
        for k, count in enumerate(counts):
            step: list[int | None] = [None] * len(counts)
            step[k] = i % count
            yield tuple(step)
