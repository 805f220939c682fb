"""``SplitMixin``: subsetting and splitting, shared by ``FeatureSet`` and ``FeatureSetView``.

Every operation returns :class:`~modularml.data.view.FeatureSetView` objects (index arrays, no
data copy). Splits made from a view register on the view's source FeatureSet, so a split of a
split is a split of the same FeatureSet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modularml.data.collection import readonly_indices
from modularml.data.conditions import condition_mask
from modularml.data.selectors import resolve_selectors
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.utils.warn import warn

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.records import SplitterLike
    from modularml.data.view import FeatureSetView

__all__ = ["SplitMixin", "missing_split_message"]


def missing_split_message(featureset: str, split: str, available: Sequence[str]) -> str:
    """``FeatureSet 'x', which has no split 'val'...``: what is missing and how to add it."""
    head = f"FeatureSet {featureset!r}, which has no split {split!r}"
    if not available:
        return (
            f"{head}: it is not split yet. Split it first, so that it has a split named {split!r}: e.g. "
            "fs.split_random({'train': 0.8, 'val': 0.2}, seed=0) (group_by='<tag>' keeps groups together), or "
            "fs.split_by_condition(...)."
        )
    return (
        f"{head}; available splits: {sorted(available)}. Use one of them, or add a split named {split!r} "
        "(fs.split_random(...), fs.split_by_condition(...), fs.add_split(view))."
    )


class SplitMixin:
    """Row and column subsetting, set operations on samples, and splitting."""

    __slots__ = ()

    # host interface (see SampleCollectionMixin)
    def _fs(self) -> FeatureSet:
        raise NotImplementedError

    def _visible_columns(self) -> list[str]:
        raise NotImplementedError

    def _rows(self) -> np.ndarray | None:
        """This host's source rows, or ``None`` for all rows in order (a FeatureSet)."""
        raise NotImplementedError

    def _row_indices(self) -> np.ndarray:
        """This host's source rows as an index array (all rows for a FeatureSet)."""
        raise NotImplementedError

    def _rows_where(self, mask: np.ndarray) -> np.ndarray:
        """Source rows of this host's rows where ``mask`` (one flag per row) is True."""
        rows = self._rows()
        return np.flatnonzero(mask) if rows is None else rows[mask]

    def _column_values(self, name: str) -> np.ndarray:
        """This host's rows of a column (the cached column itself for a FeatureSet)."""
        values = self._fs().collection.to_numpy(name)
        rows = self._rows()
        return values if rows is None else values[rows]

    def _uuid_array(self) -> pa.Array:
        array = self._fs().collection.sample_uuid_array()
        rows = self._rows()
        return array if rows is None else array.take(pa.array(rows))

    def _view_type(self) -> type[FeatureSetView]:
        """The view class this host makes views of (``FeatureSetView``); the host supplies it."""
        raise NotImplementedError

    def _new_view(self, indices: np.ndarray, columns: list[str] | None, label: str | None) -> FeatureSetView:
        fs = self._fs()
        return self._view_type().trusted(
            fs, readonly_indices(indices), list(self._visible_columns() if columns is None else columns), label
        )

    # -- row subsets -----------------------------------------------------------------------------
    def take(self, indices: Sequence[int] | np.ndarray, label: str | None = None) -> FeatureSetView:
        """A view of some rows of this FeatureSet or view, by position.

        Args:
            indices: Positions relative to this object (0 is its first row), in the order wanted.
                Negative positions count from the end, as in numpy.
            label (str | None): Label of the returned view.

        Returns:
            FeatureSetView: The rows, with the same columns.

        Raises:
            IndexError: If a position is out of range.
            TypeError: If ``indices`` are not integers.
        """
        positions = np.asarray(indices)
        if positions.size == 0:
            positions = positions.astype(np.int64)
        if positions.ndim != 1 or positions.dtype.kind not in "iu":
            raise InvalidTypeError(
                f"take() needs a 1-D sequence of integer positions; got an array of shape {positions.shape} "
                f"and dtype {positions.dtype}."
            )
        rows = self._rows()
        n = self._fs().collection.n_samples if rows is None else len(rows)
        bad = positions[(positions >= n) | (positions < -n)]
        if len(bad):
            raise IndexError(f"take(): position {int(bad[0])} is out of range for {n} samples.")
        if rows is None:
            return self._new_view(np.where(positions < 0, positions + n, positions), None, label)
        return self._new_view(rows[positions], None, label)

    def take_sample_uuids(self, sample_uuids: Sequence[str] | np.ndarray, label: str | None = None) -> FeatureSetView:
        """A view of the rows with the given sample UUIDs, in the order given.

        Raises:
            KeyError: If a UUID is not among this object's samples (the message shows some).
        """
        from modularml.errors import ColumnNotFoundError

        wanted = pa.array(np.asarray(sample_uuids, dtype=object), type=pa.string())
        position = pc.index_in(wanted, value_set=self._uuid_array())
        if position.null_count:
            missing = wanted.filter(pc.is_null(position))[:3].to_pylist()
            raise ColumnNotFoundError(
                f"{position.null_count} of the sample UUIDs are not in {self._describe()}, e.g. {missing}."
            )
        positions = position.to_numpy(zero_copy_only=False).astype(np.int64)
        rows = self._rows()
        return self._new_view(positions if rows is None else rows[positions], None, label)

    def filter(
        self, where: Mapping[str, Any] | None = None, /, *, label: str | None = None, **conditions: Any
    ) -> FeatureSetView:
        """A view of the rows that meet every condition.

        Conditions are given as keywords (``fs.filter(cell_id=[1, 2], soh=lambda x: x > 0.8)``) or,
        for column names that are not identifiers (``"tags.cell_id.raw"``), as a mapping passed
        positionally. A column is named by key, ``key.rep``, ``domain.key`` or its qualified name;
        a condition is a literal, a collection, or a predicate (see :mod:`modularml.data.conditions`).

        Returns:
            FeatureSetView: The matching rows, in this object's order (possibly none: a warning
            is issued then).

        Raises:
            KeyError: If a condition names an unknown column.
            ValueError: If no condition is given, or a predicate fails.
        """
        merged = dict(where or {})
        merged.update(conditions)
        if not merged:
            raise InvalidArgumentError("filter() needs at least one condition, e.g. fs.filter(cell_id=3).")
        fs = self._fs()
        mask = np.ones(len(self), dtype=bool)
        for selector, condition in merged.items():
            name = fs.find_column(selector)
            mask &= condition_mask(self._column_values(name), condition, name)
        if not mask.any():
            warn(f"No samples of {self._describe()} meet the filter conditions {list(merged)}.")
        return self._new_view(self._rows_where(mask), None, label)

    def select(
        self,
        columns: str | list[str] | None = None,
        *,
        features: str | list[str] | None = None,
        targets: str | list[str] | None = None,
        tags: str | list[str] | None = None,
        rep: str | None = None,
        label: str | None = None,
    ) -> FeatureSetView:
        """A view with the same rows and only the selected columns.

        Args:
            columns (str | list[str] | None): Qualified names (``"features.voltage.raw"``) or
                wildcards over them (``"*.raw"``, ``"features.*"``).
            features (str | list[str] | None): Feature selectors: ``"voltage"``, ``"voltage.raw"``,
                wildcards; the ``features.`` prefix may be omitted.
            targets (str | list[str] | None): Target selectors, same rules.
            tags (str | list[str] | None): Tag selectors, same rules.
            rep (str | None): Representation for selectors that name none; ``None`` matches all.
            label (str | None): Label of the returned view.

        Returns:
            FeatureSetView: Only the selected columns (no data is copied).

        Raises:
            KeyError: If a selector matches no column.
            ValueError: If nothing is selected.
        """
        names = resolve_selectors(
            self._visible_columns(), columns=columns, features=features, targets=targets, tags=tags, rep=rep
        )
        if not names:
            raise InvalidArgumentError("select() needs at least one selector, e.g. fs.select(features='voltage').")
        return self._new_view(self._row_indices(), names, label)

    # -- set operations on samples ----------------------------------------------------------------------
    def _membership(self, other: SplitMixin) -> np.ndarray:
        """For each of this object's rows, whether ``other`` holds the same sample."""
        if other._fs() is self._fs():
            other_rows = other._rows()
            if other_rows is None:
                return np.ones(len(self), dtype=bool)
            flags = np.zeros(self._fs().collection.n_samples, dtype=bool)
            flags[other_rows] = True
            rows = self._rows()
            return flags if rows is None else flags[rows]
        found = pc.is_in(self._uuid_array(), value_set=other._uuid_array())
        return found.to_numpy(zero_copy_only=False).astype(bool)

    def _check_other(self, other: object) -> SplitMixin:
        if not isinstance(other, SplitMixin):
            raise InvalidTypeError(f"Expected a FeatureSet or FeatureSetView; got {type(other).__name__}.")
        return other

    def is_disjoint_with(self, other: FeatureSet | FeatureSetView) -> bool:
        """Whether this object and ``other`` share no sample.

        With the same source FeatureSet, rows are compared by index; otherwise by sample UUID,
        so copies and reloaded FeatureSets compare by sample identity.
        """
        return not self._membership(self._check_other(other)).any()

    def get_overlap_with(self, other: FeatureSet | FeatureSetView) -> list[str]:
        """The sample UUIDs this object shares with ``other`` (in this object's row order).

        Returns:
            list[str]: Overlapping ``sample_uuids`` values.
        """
        mask = self._membership(self._check_other(other))
        return self._fs().collection.sample_uuids()[self._rows_where(mask)].tolist()

    def take_intersection(self, other: FeatureSet | FeatureSetView, label: str | None = None) -> FeatureSetView:
        """A view of this object's rows whose samples are also in ``other`` (this object's order)."""
        return self._new_view(self._rows_where(self._membership(self._check_other(other))), None, label)

    def take_difference(self, other: FeatureSet | FeatureSetView, label: str | None = None) -> FeatureSetView:
        """A view of this object's rows whose samples are not in ``other`` (this object's order)."""
        return self._new_view(self._rows_where(~self._membership(self._check_other(other))), None, label)

    def to_featureset(self, label: str, *, register: bool = True) -> FeatureSet:
        """Materialise these rows and columns as a new FeatureSet (data copied, UUIDs kept).

        Args:
            label (str): Label of the new FeatureSet.
            register (bool): Register it in the active ExperimentContext. Defaults to True.

        Returns:
            FeatureSet: A FeatureSet without splits.
        """
        source = self._fs()
        collection = source.collection
        names = self._visible_columns()
        if names != collection.schema.names:
            collection = collection.select(names)
        return type(source)(label, collection.take(self._row_indices()), register=register)

    # -- splitting ------------------------------------------------------------------------------------------
    def split(
        self, splitter: SplitterLike, *, return_views: bool = False, register: bool = True
    ) -> dict[str, FeatureSetView] | None:
        """Apply a splitter to this FeatureSet (or view) and register the splits on the FeatureSet.

        The splitter is recorded (a :class:`~modularml.splitters.SplitterRecord`), so
        ``copy(restore_splits=True)`` and saved files can re-apply it. If the new splits overlap
        one another a warning is issued. Either every split is added or, on error, none.

        Args:
            splitter (BaseSplitter): e.g. ``RandomSplitter({"train": 0.8, "val": 0.2})``.
            return_views (bool): Return the new views. Defaults to False.
            register (bool): Add the splits to the FeatureSet and record the splitter. Defaults to True.

        Returns:
            dict[str, FeatureSetView] | None: Split name -> view, if ``return_views``.

        Raises:
            ValueError: If a split would be empty, or a split name already exists.
        """
        from modularml.data.records import SplitterRecord

        if not all(callable(getattr(splitter, m, None)) for m in ("split", "get_config", "from_config")):
            raise InvalidTypeError(
                f"split() takes a splitter such as RandomSplitter(...) or ConditionSplitter(...); got {splitter!r}."
            )
        fs = self._fs()
        views = splitter.split(self._as_view())
        for (name_a, view_a), (name_b, view_b) in itertools.combinations(views.items(), 2):
            shared = np.intersect1d(view_a.indices, view_b.indices, assume_unique=True)
            if len(shared):
                warn(f"Splits {name_a!r} and {name_b!r} share {len(shared)} samples.")
        if register:
            applied_to, applied_rows = self._applied_to()
            record = SplitterRecord(
                splitter=type(splitter).from_config(splitter.get_config()),
                split_names=tuple(views),
                applied_to=applied_to,
                applied_to_indices=applied_rows,
                description=repr(splitter),
            )
            fs._add_splits(views, record=record, parent=applied_to)
        return views if return_views else None

    def split_random(
        self,
        ratios: Mapping[str, float],
        *,
        group_by: str | Sequence[str] | None = None,
        stratify_by: str | Sequence[str] | None = None,
        strict_stratification: bool = False,
        seed: int | None = 13,
        return_views: bool = False,
        register: bool = True,
    ) -> dict[str, FeatureSetView] | None:
        """Split at random by ratios; a shortcut for ``split(RandomSplitter(...))``.

        Args:
            ratios (Mapping[str, float]): Split name -> fraction, summing to 1.
            group_by (str | Sequence[str] | None): Keep groups (e.g. ``"cell_id"``) whole.
            stratify_by (str | Sequence[str] | None): Keep class proportions of these columns.
            strict_stratification (bool): Require every stratum in every split. Defaults to False.
            seed (int | None): Random seed. Defaults to 13.
            return_views (bool): Return the new views. Defaults to False.
            register (bool): Register the splits. Defaults to True.

        Returns:
            dict[str, FeatureSetView] | None: Split name -> view, if ``return_views``.

        Raises:
            ValueError: See :class:`~modularml.splitters.RandomSplitter` and :meth:`split`.
        """
        from modularml.data.records import splitter_class

        splitter = splitter_class("RandomSplitter")(
            ratios, group_by=group_by, stratify_by=stratify_by, strict_stratification=strict_stratification, seed=seed
        )
        return self.split(splitter, return_views=return_views, register=register)

    def split_by_condition(
        self,
        conditions: Mapping[str, Mapping[str, Any | Sequence[Any] | Callable[..., Any]]] | None = None,
        /,
        *,
        return_views: bool = False,
        register: bool = True,
        **named_conditions: Mapping[str, Any],
    ) -> dict[str, FeatureSetView] | None:
        """Split by conditions; a shortcut for ``split(ConditionSplitter(...))``.

        Splits are given as keywords (``fs.split_by_condition(cold={"temp": lambda t: t < 20},
        warm={"temp": lambda t: t >= 20})``) or as one mapping passed positionally.

        Returns:
            dict[str, FeatureSetView] | None: Split name -> view, if ``return_views``.

        Raises:
            ValueError: See :class:`~modularml.splitters.ConditionSplitter` and :meth:`split`.
        """
        from modularml.data.records import splitter_class

        merged = dict(conditions or {})
        for name in named_conditions:
            if name in merged:
                raise InvalidArgumentError(f"Split {name!r} is given twice.")
        merged.update(named_conditions)
        return self.split(splitter_class("ConditionSplitter")(**merged), return_views=return_views, register=register)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _as_view(self) -> FeatureSetView:
        raise NotImplementedError

    def _applied_to(self) -> tuple[str | None, np.ndarray | None]:
        """What a splitter applied to this object is recorded as applying to."""
        raise NotImplementedError

    def _describe(self) -> str:
        return f"{type(self).__name__} {getattr(self, 'label', None)!r}"
