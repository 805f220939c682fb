"""``NSampler``: N-way batches of an anchor plus any number of roles chosen by similarity conditions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.errors import InvalidArgumentError, InvalidLabelError, InvalidTypeError
from modularml.samplers.base import BaseSampler, Samples, _check_int
from modularml.samplers.matching import ConditionColumn, find_candidates
from modularml.similarity import SimilarityCondition
from modularml.utils.naming import validate_label

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["ROLE_ANCHOR", "NSampler"]

#: The role every similarity-based batch is built around.
ROLE_ANCHOR = "anchor"

ConditionMapping = Mapping[str, Mapping[str, SimilarityCondition]]


def _as_condition(role: str, key: str, value: Any) -> SimilarityCondition:
    if isinstance(value, SimilarityCondition):
        return value
    if isinstance(value, Mapping):  # a condition's config, as get_config() stores it
        return SimilarityCondition.from_config(dict(value))
    raise InvalidTypeError(
        f"Condition {key!r} of role {role!r} must be a SimilarityCondition; got {type(value).__name__} {value!r:.60}."
    )


def _check_conditions(role: str, conditions: Any) -> dict[str, SimilarityCondition]:
    if not isinstance(conditions, Mapping) or not conditions:
        raise InvalidArgumentError(
            f"Role {role!r} needs a non-empty mapping of column -> SimilarityCondition, e.g. "
            f"{{'soh': SimilarityCondition(tolerance=0.01)}}; got {conditions!r:.80}."
        )
    checked = {}
    for key, value in conditions.items():
        if not isinstance(key, str) or not key:
            raise InvalidTypeError(f"Role {role!r}: a condition is keyed by a column selector string; got {key!r}.")
        checked[key] = _as_condition(role, key, value)
    return checked


def _describe(conditions: Mapping[str, SimilarityCondition]) -> str:
    parts = [
        f"{key!r}: {c.mode} within tolerance {c.tolerance:g}"
        if c.mode == "similar"
        else f"{key!r}: {c.mode} beyond tolerance {c.tolerance:g}"
        for key, c in conditions.items()
    ]
    return "{" + ", ".join(parts) + "}"


class NSampler(BaseSampler):
    """Similarity-based N-way sampler: each sample is an anchor plus one row per role.

    For every anchor (each row of the source) and every role, candidates are ranked full match
    (every condition of the role matches), then partial match, then non-match, the last two only
    where the failing conditions allow fallback; the anchor itself is never its own candidate. Up
    to ``max_samples_per_anchor`` candidates are kept per role (at random, or the best scores with
    ``choose_best_only``). Roles that find different numbers of candidates for an anchor are
    aligned: the anchor forms as many samples as its scarcest role has candidates, and anchors
    without a candidate for some role are left out. A role sample's weight is the mean of its
    per-condition :meth:`SimilarityCondition.score`; anchors weigh 1 (they carry no weight array).

    The search is vectorised (see :mod:`modularml.samplers.matching`): one condition without a
    custom metric runs in ``O(n log n)``; several conditions enumerate the tolerance window of a
    plain ``similar`` condition; only custom metrics or fallback on every condition score all
    ``n^2`` pairs (in blocks, with a progress bar).

    Args:
        condition_mapping (dict[str, dict[str, SimilarityCondition]]): Role -> {column selector ->
            condition}, e.g. ``{"positive": {"soh": SimilarityCondition(tolerance=0.01)}}``.
            Selectors name one column (``"soh"``, ``"soh.raw"``, ``"targets.soh.raw"``) holding one
            value per sample. The role ``"anchor"`` is implicit and may not be given.
        batch_size (int): Samples (anchor tuples) per batch. Defaults to 1.
        shuffle (bool): Shuffle the samples, afresh every epoch. Defaults to False.
        max_samples_per_anchor (int | None): Candidates kept per anchor and role; None keeps all
            (with fallback that is every other row: quadratic). Defaults to 3.
        choose_best_only (bool): Keep the best-scoring candidates instead of random ones (ties are
            broken by value order). Defaults to False.
        group_by (str | Sequence[str] | None): Column(s) defining groups; each batch holds one group
            (of ``group_by_role``'s rows). Exclusive with ``stratify_by``.
        group_by_role (str): Role whose rows define the group. Defaults to ``"anchor"``.
        stratify_by (str | Sequence[str] | None): Column(s) defining strata (of
            ``stratify_by_role``'s rows), interleaved in every batch.
        stratify_by_role (str): Role whose rows define the stratum. Defaults to ``"anchor"``.
        strict_stratification (bool): Require every full batch to hold every stratum. Defaults to True.
        drop_last (bool): Drop a short last batch. Defaults to False.
        seed (int | None): Seed of every random choice (candidates and shuffling); None draws one.
        show_progress (bool): Show a progress bar when the search takes more than a moment.
        source (FeatureSet | FeatureSetView | Sequence | None): Source(s) to bind now.

    Raises:
        ValueError: If the mapping is empty, names the role ``"anchor"``, or a role has no condition.
        TypeError: If a condition is not a SimilarityCondition.
    """

    def __init__(
        self,
        condition_mapping: ConditionMapping,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        max_samples_per_anchor: int | None = 3,
        choose_best_only: bool = False,
        group_by: str | Sequence[str] | None = None,
        group_by_role: str = ROLE_ANCHOR,
        stratify_by: str | Sequence[str] | None = None,
        stratify_by_role: str = ROLE_ANCHOR,
        strict_stratification: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
        show_progress: bool = True,
        source: FeatureSet | FeatureSetView | Sequence[FeatureSet | FeatureSetView] | None = None,
    ) -> None:
        if not isinstance(condition_mapping, Mapping) or not condition_mapping:
            raise InvalidArgumentError(
                "condition_mapping maps role names to {column: SimilarityCondition}, e.g. "
                f"{{'positive': {{'soh': SimilarityCondition(tolerance=0.01)}}}}; got {condition_mapping!r:.80}."
            )
        mapping: dict[str, dict[str, SimilarityCondition]] = {}
        for role, conditions in condition_mapping.items():
            try:
                validate_label(role, what="role name")
            except InvalidLabelError as exc:
                raise InvalidArgumentError(str(exc)) from None
            if role == ROLE_ANCHOR:
                raise InvalidArgumentError(
                    "condition_mapping may not name the role 'anchor': every sample is built around an anchor, and "
                    "the conditions say how the other roles relate to it. Rename the role."
                )
            mapping[role] = _check_conditions(role, conditions)
        self.condition_mapping = mapping
        self.max_samples_per_anchor = (
            None if max_samples_per_anchor is None else _check_int("max_samples_per_anchor", max_samples_per_anchor, 1)
        )
        self.choose_best_only = bool(choose_best_only)
        super().__init__(
            batch_size=batch_size,
            shuffle=shuffle,
            group_by=group_by,
            group_by_role=group_by_role,
            stratify_by=stratify_by,
            stratify_by_role=stratify_by_role,
            strict_stratification=strict_stratification,
            drop_last=drop_last,
            seed=seed,
            show_progress=show_progress,
            source=source,
        )

    @property
    def role_names(self) -> list[str]:
        """``["anchor", *condition_mapping]``."""
        return [ROLE_ANCHOR, *self.condition_mapping]

    def _conditions_config(self) -> dict[str, dict[str, Any]]:
        return {role: {k: c.get_config() for k, c in conds.items()} for role, conds in self.condition_mapping.items()}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (conditions as their configs, the resolved seed)."""
        return {
            "condition_mapping": self._conditions_config(),
            "max_samples_per_anchor": self.max_samples_per_anchor,
            "choose_best_only": self.choose_best_only,
            "group_by_role": self.group_by_role,
            "stratify_by_role": self.stratify_by_role,
            **self._batching_config(),
        }

    def _progress_total(self, view: FeatureSetView) -> int:
        return len(view) * len(self.condition_mapping)

    def build_samples(self, view: FeatureSetView, rng: np.random.Generator, progress: Callable[[int], None]) -> Samples:
        """Find each anchor's candidates per role and align them into samples.

        Raises:
            ValueError: If the source has fewer than 2 samples, or no anchor finds a candidate for
                every role (the message names the role and its conditions).
        """
        rows = view.valid_indices
        n = len(rows)
        label = view.label or view.source.label
        if n < 2:
            raise InvalidArgumentError(f"{type(self).__name__} needs at least 2 samples to pair; {label!r} has {n}.")
        fs = view.source
        # a view of every row in order (fs.to_view()) needs no gathers: positions are rows
        identity = n == fs.collection.n_samples and np.array_equal(rows, np.arange(n))
        columns: dict[str, ConditionColumn] = {}
        found = {}
        for role, conditions in self.condition_mapping.items():
            for key in conditions:
                if key not in columns:
                    name = fs.find_column(key)
                    values = fs.collection.to_numpy(name)
                    columns[key] = ConditionColumn.build(name, values if identity else values[rows])
            found[role] = find_candidates(
                [columns[k] for k in conditions],
                list(conditions.values()),
                self.max_samples_per_anchor,
                best=self.choose_best_only,
                rng=rng,
                progress=progress,
            )
            if not found[role].counts.any():
                raise InvalidArgumentError(
                    f"No anchor found a {role!r} sample: the conditions {_describe(conditions)} match no pair among "
                    f"the {n} samples of {label!r}. Widen the tolerance, check the column, or pass "
                    "allow_fallback=True to accept down-weighted non-matches."
                )
        counts = np.min(np.stack([c.counts for c in found.values()]), axis=0)
        total = int(counts.sum())
        if total == 0:
            raise InvalidArgumentError(
                f"No anchor among the {n} samples of {label!r} finds a sample for every role "
                f"{list(self.condition_mapping)} at once. Widen the tolerances or allow fallback."
            )
        anchors = np.repeat(np.arange(n, dtype=np.int64), counts)
        rank = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        role_indices = {ROLE_ANCHOR: anchors if identity else rows[anchors]}
        role_weights = {}  # anchors weigh 1 (a role without weights)
        for role, candidates in found.items():
            if np.array_equal(candidates.counts, counts):  # every candidate is used: no gather needed
                positions, scores = candidates.positions, candidates.scores
            else:
                at = candidates.offsets[anchors] + rank
                positions, scores = candidates.positions[at], candidates.scores[at]
            role_indices[role] = positions if identity else rows[positions]
            role_weights[role] = scores.astype(np.float32)
        return Samples(role_indices, role_weights)
