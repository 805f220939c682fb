"""``PairedSampler``: batches of (anchor, pair) samples chosen by similarity conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modularml.samplers.n_sampler import ROLE_ANCHOR, NSampler
from modularml.similarity import SimilarityCondition

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["ROLE_PAIR", "PairedSampler"]

ROLE_PAIR = "pair"


class PairedSampler(NSampler):
    """Pairs for contrastive or siamese training: roles ``anchor`` and ``pair``.

    An :class:`NSampler` with one role, ``"pair"``, chosen by ``conditions``; the pair's weight is
    the mean of its condition scores.

    Args:
        conditions (dict[str, SimilarityCondition]): Column selector -> condition a pair must meet
            relative to its anchor, e.g. ``{"soh": SimilarityCondition(tolerance=0.01)}``.
        max_pairs_per_anchor (int | None): Pairs kept per anchor; None keeps all. Defaults to 3.
        choose_best_only (bool): Keep the best-scoring pairs instead of random ones. Defaults to False.
        batch_size, shuffle, group_by, group_by_role, stratify_by, stratify_by_role,
        strict_stratification, drop_last, seed, show_progress, source: As for :class:`NSampler`.

    Example:
        >>> sampler = PairedSampler({"soh": SimilarityCondition(tolerance=0.02)}, batch_size=64, seed=0)
        >>> sampler.bind_sources([fs["train"]])
        >>> batch = sampler.get_batches()[0].materialize_batch()
        >>> batch.get_role("pair").features, batch.get_role_weights("pair")
    """

    def __init__(
        self,
        conditions: Mapping[str, SimilarityCondition],
        *,
        max_pairs_per_anchor: int | None = 3,
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
            {ROLE_PAIR: conditions},
            batch_size=batch_size,
            shuffle=shuffle,
            max_samples_per_anchor=max_pairs_per_anchor,
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
    def conditions(self) -> dict[str, SimilarityCondition]:
        """The pair conditions."""
        return self.condition_mapping[ROLE_PAIR]

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (conditions as their configs, the resolved seed)."""
        config = super().get_config()
        return {
            "conditions": config.pop("condition_mapping")[ROLE_PAIR],
            "max_pairs_per_anchor": config.pop("max_samples_per_anchor"),
            **config,
        }
