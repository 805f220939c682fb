"""``RandomSplitter``: seeded random splits by ratio, optionally by whole groups or per stratum."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.data.selectors import as_list
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.splitters.base import BaseSplitter, check_split_name

if TYPE_CHECKING:
    from modularml.data.view import FeatureSetView

__all__ = ["RandomSplitter", "largest_remainder", "row_group_codes"]

RATIO_TOLERANCE = 1e-6


def largest_remainder(ratios: np.ndarray, totals: np.ndarray | int) -> np.ndarray:
    """Integer counts proportional to ``ratios`` that sum exactly to each total (Hamilton's method).

    Each count is ``floor(ratio * total)``; the units left over go to the largest fractional parts,
    ties to the earlier split.

    Args:
        ratios: ``k`` ratios summing to 1.
        totals: One total, or an array of ``S`` totals (one row of counts per total).

    Returns:
        np.ndarray: ``(k,)`` counts for a single total, else ``(S, k)``.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    ratios = ratios / ratios.sum()
    scalar = np.ndim(totals) == 0
    totals_arr = np.atleast_1d(np.asarray(totals, dtype=np.int64))
    exact = totals_arr[:, None] * ratios[None, :]
    counts = np.floor(exact).astype(np.int64)
    left = totals_arr - counts.sum(axis=1)
    order = np.argsort(-(exact - counts), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(len(ratios)), order.shape), axis=1)
    counts += rank < left[:, None]
    return counts[0] if scalar else counts


def row_group_codes(view: FeatureSetView, selectors: Sequence[str]) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Group code of every row of ``view`` (``0..G-1``, groups in sorted key order) and the group keys.

    Raises:
        InvalidArgumentError: If a key column is array-valued or has missing values (NaN or null).
    """
    fs = view.source
    rows = view.valid_indices
    per_key_codes = []
    per_key_values = []
    for selector in selectors:
        name = fs.find_column(selector)
        values = fs.collection.to_numpy(name)
        if values.ndim != 1:
            raise InvalidArgumentError(
                f"Cannot group or stratify by {name!r}: it holds arrays of shape {values.shape[1:]}, not one value per "
                "sample."
            )
        values = values[rows]
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise InvalidArgumentError(
                f"Column {name!r} has {int(np.isnan(values).sum())} NaN values; a group or stratum key cannot be "
                "missing. Fill or drop those samples first (e.g. fs.filter(...))."
            )
        if values.dtype == object and fs.collection.null_count(name):
            raise InvalidArgumentError(
                f"Column {name!r} has missing (None) values; a group or stratum key cannot be missing. Fill or drop "
                "those samples first."
            )
        uniques, codes = np.unique(values, return_inverse=True)
        per_key_codes.append(codes.reshape(-1))
        per_key_values.append(uniques)
    if len(per_key_codes) == 1:
        codes = per_key_codes[0]
        keys = [(v,) for v in per_key_values[0].tolist()]
        return codes, keys
    stacked = np.stack(per_key_codes, axis=1)
    unique_rows, codes = np.unique(stacked, axis=0, return_inverse=True)
    columns = [per_key_values[j][unique_rows[:, j]].tolist() for j in range(len(selectors))]
    keys = list(zip(*columns, strict=True))
    return codes.reshape(-1), keys


class RandomSplitter(BaseSplitter):
    """Split samples at random into named subsets of given ratios, reproducibly.

    Args:
        ratios (Mapping[str, float]): Split name -> fraction, e.g. ``{"train": 0.8, "val": 0.2}``.
            Fractions are positive and sum to 1 (within 1e-6).
        group_by (str | Sequence[str] | None): Column(s) whose combined value defines groups
            (e.g. a cell id); whole groups are assigned, so no group straddles two splits. The
            ratios then apply to the number of groups. Groups are shuffled with the seed.
        stratify_by (str | Sequence[str] | None): Column(s) whose combined value defines strata;
            each stratum is split by the ratios, so class proportions are kept within rounding.
            Mutually exclusive with ``group_by``.
        strict_stratification (bool): If True, every stratum must contribute at least one sample to
            every split, else an error names the strata that are too small. If False, small strata
            go wholly to the splits that their rounding favours. Defaults to False.
        seed (int | None): Seed of ``numpy.random.default_rng``; the same seed and data give the same
            splits on every machine. ``None`` draws a seed once, at construction, and keeps it (see
            :attr:`seed`), so re-applying the splitter repeats its splits. Defaults to 13.

    Counts are fixed by the largest-remainder method: each split gets ``floor(ratio * n)`` and the
    leftover samples (or groups) go to the largest fractional parts. The samples of each split
    are returned in source order.

    Raises:
        ValueError: If ratios are empty, not positive, do not sum to 1, name an invalid split, or if
            both ``group_by`` and ``stratify_by`` are given.
    """

    def __init__(
        self,
        ratios: Mapping[str, float],
        *,
        group_by: str | Sequence[str] | None = None,
        stratify_by: str | Sequence[str] | None = None,
        strict_stratification: bool = False,
        seed: int | None = 13,
    ) -> None:
        if not isinstance(ratios, Mapping) or not ratios:
            raise InvalidArgumentError(
                f"ratios maps split names to fractions, e.g. {{'train': 0.8, 'val': 0.2}}; got {ratios!r}."
            )
        clean: dict[str, float] = {}
        for name, ratio in ratios.items():
            check_split_name(name)
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)):
                raise InvalidTypeError(f"The ratio of split {name!r} must be a number; got {ratio!r}.")
            if not math.isfinite(ratio) or ratio <= 0:
                raise InvalidArgumentError(f"The ratio of split {name!r} must be positive; got {ratio!r}.")
            clean[name] = float(ratio)
        total = sum(clean.values())
        if abs(total - 1.0) > RATIO_TOLERANCE:
            raise InvalidArgumentError(
                f"Split ratios must sum to 1; {clean} sums to {total:.6g}. Adjust them, e.g. "
                f"{ {k: round(v / total, 6) for k, v in clean.items()} }."
            )
        self.ratios = clean
        self.group_by = as_list(group_by, "group_by column") or None
        self.stratify_by = as_list(stratify_by, "stratify_by column") or None
        if self.group_by and self.stratify_by:
            raise InvalidArgumentError(
                f"group_by={self.group_by} and stratify_by={self.stratify_by} cannot be combined: give one of them."
            )
        self.strict_stratification = bool(strict_stratification)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InvalidTypeError(f"seed must be an int or None; got {seed!r}.")
        self.seed = int(seed)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values)."""
        return {
            "ratios": dict(self.ratios),
            "group_by": self.group_by,
            "stratify_by": self.stratify_by,
            "strict_stratification": self.strict_stratification,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RandomSplitter:
        """Build a splitter from :meth:`get_config` output."""
        config = dict(config)
        return cls(config.pop("ratios"), **config)

    def split_indices(self, view: FeatureSetView) -> dict[str, np.ndarray]:
        """Split the rows of ``view``; see the class docstring for the rules.

        Returns:
            dict[str, np.ndarray]: Split name -> sorted row indices into ``view.source``.

        Raises:
            ValueError: If a split would be empty, a key column has missing values, or (with
                ``strict_stratification``) a stratum is too small for every split.
        """
        names = list(self.ratios)
        ratios = np.array([self.ratios[n] for n in names])
        rows = view.valid_indices
        n = len(rows)
        rng = np.random.default_rng(self.seed)
        if self.group_by:
            codes, keys = row_group_codes(view, self.group_by)
            counts = largest_remainder(ratios, len(keys))
            self._check_counts(names, counts, len(keys), "groups")
            split_of_group = np.empty(len(keys), dtype=np.int64)
            split_of_group[rng.permutation(len(keys))] = np.repeat(np.arange(len(names)), counts)
            split_of_row = split_of_group[codes]
        elif self.stratify_by:
            split_of_row = self._stratified(view, names, ratios, rng)
        else:
            counts = largest_remainder(ratios, n)
            self._check_counts(names, counts, n, "samples")
            split_of_row = np.empty(n, dtype=np.int64)
            split_of_row[rng.permutation(n)] = np.repeat(np.arange(len(names)), counts)
        order = np.argsort(split_of_row, kind="stable")
        bounds = np.cumsum(np.bincount(split_of_row, minlength=len(names)))[:-1]
        return {name: np.sort(part) for name, part in zip(names, np.split(rows[order], bounds), strict=True)}

    def _stratified(self, view: FeatureSetView, names: list[str], ratios: np.ndarray, rng: np.random.Generator):
        codes, keys = row_group_codes(view, self.stratify_by or [])
        sizes = np.bincount(codes, minlength=len(keys))
        counts = largest_remainder(ratios, sizes)  # (strata, splits)
        if self.strict_stratification and (counts == 0).any():
            small = [f"{keys[s]} ({sizes[s]} samples)" for s in np.flatnonzero((counts == 0).any(axis=1))[:5]]
            raise InvalidArgumentError(
                f"strict_stratification=True, but strata {', '.join(small)} are too small to give every split of "
                f"{self.ratios} a sample. Merge small strata, change the ratios, or pass strict_stratification=False."
            )
        self._check_counts(names, counts.sum(axis=0), len(codes), "samples")
        order = np.lexsort((rng.random(len(codes)), codes))
        sorted_codes = codes[order]
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        rank = np.arange(len(codes)) - starts[sorted_codes]
        bounds = np.cumsum(counts, axis=1)
        split_sorted = (rank[:, None] >= bounds[sorted_codes]).sum(axis=1)
        split_of_row = np.empty(len(codes), dtype=np.int64)
        split_of_row[order] = split_sorted
        return split_of_row

    def _check_counts(self, names: list[str], counts: np.ndarray, total: int, unit: str) -> None:
        empty = [name for name, count in zip(names, counts, strict=True) if count == 0]
        if empty:
            raise InvalidArgumentError(
                f"Split {empty[0]!r} (ratio {self.ratios[empty[0]]}) would be empty: {total} {unit} cannot give "
                f"every split of {self.ratios} at least one. Use larger ratios, fewer splits, or more data."
            )
