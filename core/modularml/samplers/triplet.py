"""``TripletSampler``: batches of (anchor, positive, negative) samples chosen by similarity conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modularml.samplers.n_sampler import ROLE_ANCHOR, NSampler
from modularml.similarity import SimilarityCondition

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["ROLE_NEGATIVE", "ROLE_POSITIVE", "TripletSampler"]

ROLE_POSITIVE = "positive"
ROLE_NEGATIVE = "negative"


class TripletSampler(NSampler):
    """Triplets for metric learning: roles ``anchor``, ``positive`` and ``negative``.

    An :class:`NSampler` whose ``positive`` role meets ``pos_conditions`` and whose ``negative``
    role meets ``neg_conditions`` (typically the same column, ``mode="dissimilar"``).

    Args:
        pos_conditions (dict[str, SimilarityCondition]): Column selector -> condition for positives.
        neg_conditions (dict[str, SimilarityCondition]): Column selector -> condition for negatives.
        max_samples_per_anchor (int | None): Candidates kept per anchor and role; None keeps all.
            Defaults to 3.
        choose_best_only (bool): Keep the best-scoring candidates instead of random ones.
        batch_size, shuffle, group_by, group_by_role, stratify_by, stratify_by_role,
        strict_stratification, drop_last, seed, show_progress, source: As for :class:`NSampler`.

    Example:
        >>> sampler = TripletSampler(
        ...     pos_conditions={"soh": SimilarityCondition(tolerance=0.01)},
        ...     neg_conditions={"soh": SimilarityCondition(mode="dissimilar", tolerance=0.05)},
        ...     batch_size=128, shuffle=True, seed=0, source=fs["train"],
        ... )
    """

    def __init__(
        self,
        pos_conditions: Mapping[str, SimilarityCondition],
        neg_conditions: Mapping[str, SimilarityCondition],
        *,
        max_samples_per_anchor: int | None = 3,
        choose_best_only: bool = False,
        batch_size: int = 1,
        shuffle: bool = False,
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
        super().__init__(
            {ROLE_POSITIVE: pos_conditions, ROLE_NEGATIVE: neg_conditions},
            batch_size=batch_size,
            shuffle=shuffle,
            max_samples_per_anchor=max_samples_per_anchor,
            choose_best_only=choose_best_only,
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
    def pos_conditions(self) -> dict[str, SimilarityCondition]:
        """The positive conditions."""
        return self.condition_mapping[ROLE_POSITIVE]

    @property
    def neg_conditions(self) -> dict[str, SimilarityCondition]:
        """The negative conditions."""
        return self.condition_mapping[ROLE_NEGATIVE]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (conditions as their configs, the resolved seed)."""
        config = super().get_config()
        mapping = config.pop("condition_mapping")
        return {"pos_conditions": mapping[ROLE_POSITIVE], "neg_conditions": mapping[ROLE_NEGATIVE], **config}
