"""``SimpleSampler``: plain batches of single samples (one role, ``"default"``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.batches import ROLE_DEFAULT
from modularml.samplers.base import BaseSampler, Samples

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["SimpleSampler"]


class SimpleSampler(BaseSampler):
    """Batches of samples, optionally shuffled (afresh every epoch), grouped or stratified.

    Every sample of the source appears exactly once per epoch (unless ``drop_last`` drops a short
    last batch). Batches have one role, ``"default"``, and every sample weighs 1.

    Args:
        batch_size (int): Samples per batch. Defaults to 1.
        shuffle (bool): Shuffle the samples; each epoch gets its own order derived from
            ``(seed, epoch)``, reproducibly. With False every epoch is identical. Defaults to False.
        group_by (str | Sequence[str] | None): Column(s) whose combined value defines groups
            (e.g. ``"cell_id"``): every batch holds samples of one group only; each group's last
            batch may be short. Exclusive with ``stratify_by``.
        stratify_by (str | Sequence[str] | None): Column(s) whose combined value defines strata:
            batches interleave the strata round-robin in proportion to their sizes, so each batch
            holds every stratum's share of the data within rounding.
        strict_stratification (bool): Require every full batch to hold at least one sample of
            every stratum; an error names the strata that are too small. Defaults to True.
        drop_last (bool): Drop the short last batch (with ``group_by``, each group's short last
            batch). Defaults to False.
        seed (int | None): Seed of the shuffling. ``None`` draws one at construction and keeps it.
        show_progress (bool): Show a progress bar for sampling that takes more than a moment.
        source (FeatureSet | FeatureSetView | Sequence | None): Source(s) to bind now.

    Example:
        >>> sampler = SimpleSampler(batch_size=32, shuffle=True, seed=0, source=fs["train"])
        >>> batches = sampler.get_batches()  # list[BatchView]
        >>> batch = batches[0].materialize_batch(fmt="torch")
    """

    def __init__(
        self,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        group_by: str | Sequence[str] | None = None,
        stratify_by: str | Sequence[str] | None = None,
        strict_stratification: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
        show_progress: bool = True,
        source: FeatureSet | FeatureSetView | Sequence[FeatureSet | FeatureSetView] | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            shuffle=shuffle,
            group_by=group_by,
            stratify_by=stratify_by,
            strict_stratification=strict_stratification,
            drop_last=drop_last,
            seed=seed,
            show_progress=show_progress,
            source=source,
        )

    @property
    def role_names(self) -> list[str]:
        """``["default"]``."""
        return [ROLE_DEFAULT]

    def build_samples(self, view: FeatureSetView, rng: np.random.Generator, progress: Callable[[int], None]) -> Samples:
        """Every valid row of ``view`` is one sample."""
        rows = view.valid_indices
        progress(len(rows))
        return Samples({ROLE_DEFAULT: rows})

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values, with the resolved seed)."""
        return self._batching_config()
