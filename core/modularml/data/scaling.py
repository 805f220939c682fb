"""``ScalingMixin``: reversible scaling of FeatureSet columns, with a log of scaler records.

``fit_transform`` stacks the selected columns of one domain, flattens them to the 2-D matrix a
scaler sees (:class:`FlattenLayout`), fits the scaler on a split's rows, transforms every row,
restores the shapes and stores the result as each key's ``transformed`` representation; a
:class:`~modularml.scalers.ScalerRecord` keeps the fitted scaler. One ``transformed``
representation exists per key: a scaler reads ``transformed`` where every selected key has one
(it is chained on the earlier scalers), else ``raw``.

Undoing recomputes the ``transformed`` columns from ``raw`` by re-applying the remaining fitted
scalers (transform only, in order), so the result is exactly what it was before the undone
scaler was applied, bit for bit, and works for scalers without an inverse. Inverting model
predictions (:meth:`ScalingMixin.unscale_data_for_cols`) uses the scalers' inverses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.data.schema import (
    DATA_DOMAINS,
    REP_RAW,
    REP_TRANSFORMED,
    STRING_DTYPE,
    ColumnSpec,
    check_domain,
    column_name,
)
from modularml.data.selectors import as_list
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.utils.warn import warn

if TYPE_CHECKING:
    from modularml.data.collection import SampleCollection
    from modularml.data.records import ScalerRecord
    from modularml.data.view import FeatureSetView
    from modularml.scalers import Scaler

__all__ = ["FlattenLayout", "ScalingMixin"]

ColumnKey = tuple[str, str]  # (domain, key)


class FlattenLayout:
    """How the stacked columns of a scaler become a 2-D matrix, and back.

    One column reads as ``(N, *shape)`` (a scalar column as ``(N, 1)``); several columns of one
    shape are stacked on axis 1 as ``(N, n_columns, *shape)``, as ``get_features("numpy")`` returns
    them. The stacked array must become 2-D: it already is; or it is a single column of more
    dimensions, flattened to ``(N, prod(shape))``; or ``merged_axes`` (axes of the stacked array,
    0 being the samples) are merged into one dimension and the remaining axes into the other. For
    two 100-point curves (``(N, 2, 100)``), ``merged_axes=(1, 2)`` gives ``(N, 200)`` (statistics
    per column and position) and ``merged_axes=(0, 2)`` gives ``(N * 100, 2)`` (statistics per
    column).

    Args:
        shapes: Per-sample shape of every column, in stacking order.
        merged_axes: Axes to merge into one dimension (an int is one axis), or ``None``.

    Raises:
        ValueError: If the columns have different shapes, an axis is out of range or repeated,
            or the result is not 2-D.
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], merged_axes: int | Sequence[int] | None = None) -> None:
        shapes = [tuple(s) for s in shapes]
        if not shapes:
            raise InvalidArgumentError("Select at least one column to scale.")
        if len(set(shapes)) > 1:
            raise InvalidArgumentError(
                f"Columns scaled together need one per-sample shape; got shapes {shapes}. Scale columns of different "
                "shapes in separate fit_transform calls."
            )
        self.n_columns = len(shapes)
        self.shape = shapes[0]
        if self.n_columns == 1:
            self.inner = self.shape or (1,)
        else:
            self.inner = (self.n_columns, *self.shape)
        ndim = 1 + len(self.inner)
        stacked = f"(N, {', '.join(str(s) for s in self.inner)})"
        if merged_axes is None:
            self.merged_axes: tuple[int, ...] | None = None
            if ndim == 2 or self.n_columns == 1:
                groups = [[0], list(range(1, ndim))]
            else:
                raise InvalidArgumentError(
                    f"The {self.n_columns} selected columns stack to shape {stacked}, which is {ndim}-D; a scaler "
                    f"needs 2-D data. Pass merged_axes: e.g. merged_axes={tuple(range(1, ndim))} for statistics per "
                    f"column and position, or merged_axes={(0, *range(2, ndim))} for statistics per column."
                )
        else:
            self.merged_axes = self._normalize(merged_axes, ndim, stacked)
            rest = [[a] for a in range(ndim) if a not in self.merged_axes]
            groups = sorted([list(self.merged_axes), *rest], key=min)
            if len(groups) != 2:
                raise InvalidArgumentError(
                    f"Merging axes {self.merged_axes} of the stacked columns, shaped {stacked}, leaves {len(groups)} "
                    f"dimensions; a scaler needs exactly 2. Merge all axes but one, e.g. merged_axes="
                    f"{tuple(range(1, ndim))} or {(0, *range(2, ndim))}."
                )
        self.groups = groups
        self.perm = [a for group in groups for a in group]
        self.inverse_perm = list(np.argsort(self.perm))

    @staticmethod
    def _normalize(merged_axes: int | Sequence[int], ndim: int, stacked: str) -> tuple[int, ...]:
        items = [merged_axes] if isinstance(merged_axes, (int, np.integer)) else list(merged_axes)
        if not items or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in items):
            raise InvalidArgumentError(f"merged_axes is an int or a tuple of ints; got {merged_axes!r}.")
        bad = [int(a) for a in items if not -ndim <= a < ndim]
        if bad:
            raise InvalidArgumentError(
                f"merged_axes {merged_axes!r} names axis {bad[0]}, but the stacked columns, shaped {stacked}, have "
                f"axes 0 to {ndim - 1} (0 is the samples)."
            )
        axes = [int(a) % ndim for a in items]
        if len(set(axes)) != len(axes):
            raise InvalidArgumentError(f"merged_axes {merged_axes!r} repeats an axis.")
        return tuple(sorted(axes))

    def _full(self, n: int) -> tuple[int, ...]:
        return (n, *self.inner)

    def stack(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The columns stacked as ``(N, *inner)``."""
        if self.n_columns == 1:
            array = arrays[0]
            return array.reshape(len(array), *self.inner)
        return np.stack(arrays, axis=1)

    def unstack(self, stacked: np.ndarray) -> list[np.ndarray]:
        """Inverse of :meth:`stack`: one ``(N, *shape)`` array per column."""
        n = len(stacked)
        if self.n_columns == 1:
            return [stacked.reshape(n, *self.shape)]
        return [stacked[:, i] for i in range(self.n_columns)]

    def to_2d(self, stacked: np.ndarray) -> np.ndarray:
        """``(N, *inner)`` -> the 2-D matrix a scaler sees."""
        full = stacked.shape
        rows, cols = (math.prod(full[a] for a in group) for group in self.groups)
        return np.transpose(stacked, self.perm).reshape(rows, cols)

    def from_2d(self, matrix: np.ndarray, n: int) -> np.ndarray:
        """The 2-D matrix of ``n`` samples -> ``(N, *inner)``."""
        full = self._full(n)
        return matrix.reshape([full[a] for a in self.perm]).transpose(self.inverse_perm)

    def row_ids(self, sample_ids: np.ndarray) -> np.ndarray:
        """The id of every matrix row: the sample's id, or ``"<id>/<j>"`` where samples are merged with other axes."""
        ids = np.asarray(sample_ids).astype(str)
        extra = self.groups[0][1:]
        if not extra:
            return ids
        full = self._full(len(ids))
        per_sample = math.prod(full[a] for a in extra)
        positions = np.tile(np.arange(per_sample).astype(str), len(ids))
        return np.char.add(np.char.add(np.repeat(ids, per_sample), "/"), positions)


def _apply(
    scaler: Scaler,
    layout: FlattenLayout,
    arrays: Sequence[np.ndarray],
    *,
    fit: bool,
    fit_rows: np.ndarray | None,
    sample_ids: Callable[[], np.ndarray],
) -> list[np.ndarray]:
    """Fit (optionally, on ``fit_rows``) and transform stacked columns; return one array per column.

    ``sample_ids`` gives the sample UUID strings; it is called only for a per-sample scaler (the
    strings of 10M samples take 1.4 GB).
    """
    stacked = layout.stack(arrays)
    if fit:
        scaler.fit(layout.to_2d(stacked if fit_rows is None else stacked[fit_rows]))
    matrix = layout.to_2d(stacked)
    ids = layout.row_ids(sample_ids()) if scaler.per_sample else None
    out = scaler.transform(matrix, sample_ids=ids)
    if out.shape != matrix.shape:
        raise InvalidArgumentError(
            f"Scaler {scaler.scaler_name!r} turned data of shape {matrix.shape} into {out.shape}; a FeatureSet scaler "
            "must keep the shape (one value out per value in)."
        )
    if out.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"Scaler {scaler.scaler_name!r} returned non-numeric data of dtype {out.dtype}.")
    return layout.unstack(layout.from_2d(out, len(stacked)))


class ScalingMixin:
    """Fit scalers to FeatureSet columns, undo them, and invert predictions with them."""

    __slots__ = ()

    # host interface (FeatureSet)
    _collection: SampleCollection
    _scaler_records: list[ScalerRecord]
    _splits: dict[str, FeatureSetView]
    label: str

    # ------------------------------------------------------------------ queries
    @property
    def scaler_records(self) -> list[ScalerRecord]:
        """The scaler records in the order applied (what ``copy(restore_scalers=True)`` re-applies)."""
        return list(self._scaler_records)

    def _scaling_keys(self, domain: str, keys: str | Sequence[str] | None, what: str = "keys") -> list[str]:
        """Validated bare keys of ``domain`` (all of them for ``None``)."""
        check_domain(domain)
        available = self._collection.schema.keys(domain)
        if keys is None:
            if not available:
                raise InvalidArgumentError(f"FeatureSet {self.label!r} has no {domain} columns.")
            return available
        items = as_list(keys, f"{domain} key")
        if not items:
            raise InvalidArgumentError(f"Give at least one {domain} key in {what}, or None for all of them.")
        for key in items:
            if key not in available:
                hint = ""
                if "." in key:
                    parts = key.split(".")
                    bare = parts[1] if parts[0] in DATA_DOMAINS else parts[0]
                    hint = f" Give bare keys (e.g. {bare!r}), without domain prefix or rep suffix."
                raise InvalidArgumentError(
                    f"FeatureSet {self.label!r} has no {domain} key {key!r}; its {domain} keys are {available}.{hint}"
                )
        if len(set(items)) != len(items):
            raise InvalidArgumentError(f"{what} {items} names a key twice.")
        return items

    def _uuid_strings(self) -> np.ndarray:
        return self._collection.sample_uuid_strings()  # cached by the collection

    # ------------------------------------------------------------------ fit_transform
    def fit_transform(
        self,
        scaler: Scaler | Any,
        *,
        domain: str,
        keys: str | list[str] | None = None,
        fit_to_split: str | None = None,
        merged_axes: int | tuple[int, ...] | None = None,
    ) -> None:
        """Fit a scaler to selected columns and apply the transform to the entire FeatureSet.

        Flattens the selected columns to 2-D (merging ``merged_axes``; see
        :class:`FlattenLayout`), fits a fresh clone of ``scaler`` to the rows of
        ``fit_to_split`` (or all rows), transforms all rows, restores the original shapes, stores
        the result as the ``transformed`` representation of every key, and appends a
        :class:`~modularml.scalers.ScalerRecord` to the transform log. The scaler reads the
        ``transformed`` representation where every selected key has one (chaining on earlier
        scalers), else ``raw``. On error nothing changes.

        Args:
            scaler (Scaler | Any): A Scaler, a registered scaler name (``"StandardScaler"``), or any
                scikit-learn-like object implementing ``fit()`` and ``transform()`` (wrapped as
                ``Scaler(scaler)``). It is cloned unfitted: the fitted copy lives in the record.
            domain (str): One of ``"features"``, ``"targets"``, ``"tags"``.
            keys (str | list[str] | None): Column keys within the domain to transform, scaled
                together in this order. If None, all keys of the domain. Defaults to None.
            fit_to_split (str | None): Split whose samples the scaler is fit to (e.g. ``"train"``).
                If None, the scaler is fit to all samples. Defaults to None.
            merged_axes (int | tuple[int, ...] | None): Axes of the stacked columns
                (``(N, n_columns, *shape)``; 0 is the samples) merged into one dimension. If None,
                no axes are merged (a single column of any shape is flattened per sample).

        Raises:
            ValueError: If the domain, a key or the split does not exist, the columns hold text,
                or flattening does not give 2-D data.
            TypeError: If ``scaler`` is not a Scaler or scikit-learn-transformer-like object.
        """
        from modularml.data.records import ScalerRecord
        from modularml.scalers import Scaler

        if isinstance(scaler, Scaler):
            template = scaler
        else:
            try:
                template = Scaler(scaler)
            except InvalidTypeError as exc:
                raise InvalidTypeError(f"fit_transform() needs a scaler: {exc}") from None
        keys = self._scaling_keys(domain, keys)
        schema = self._collection.schema
        for key in keys:
            spec = schema[column_name(domain, key, REP_RAW)] if REP_RAW in schema.reps(domain, key) else None
            if spec is not None and spec.dtype == STRING_DTYPE:
                raise InvalidArgumentError(f"Column {spec.name!r} holds text; scalers work on numbers.")
        has_transformed = all(REP_TRANSFORMED in schema.reps(domain, k) for k in keys)
        input_rep = REP_TRANSFORMED if has_transformed else REP_RAW
        arrays = [self._collection.to_numpy(column_name(domain, k, input_rep)) for k in keys]
        fit_rows = self._fit_rows(fit_to_split)
        layout = FlattenLayout([a.shape[1:] for a in arrays], merged_axes)
        fitted = template.clone_unfitted()
        outputs = _apply(fitted, layout, arrays, fit=True, fit_rows=fit_rows, sample_ids=self._uuid_strings)
        record = ScalerRecord(
            order=len(self._scaler_records),
            domain=domain,
            keys=tuple(keys),
            input_rep=input_rep,
            shapes=tuple(a.shape[1:] for a in arrays),
            merged_axes=layout.merged_axes,
            fit_to_split=fit_to_split,
            fit_indices=fit_rows,
            scaler=fitted,
        )
        collection = self._with_transformed({(domain, k): a for k, a in zip(keys, outputs, strict=True)}, drop=())
        self._collection = collection
        self._scaler_records.append(record)

    def _fit_rows(self, fit_to_split: str | None) -> np.ndarray | None:
        if fit_to_split is None:
            return None
        if not isinstance(fit_to_split, str) or fit_to_split not in self._splits:
            raise InvalidArgumentError(
                f"FeatureSet {self.label!r} has no split {fit_to_split!r} to fit the scaler to; available splits: "
                f"{list(self._splits)}. Create it first (e.g. fs.split_random(...)), or pass fit_to_split=None to fit "
                "to all samples."
            )
        rows = np.array(self.get_split(fit_to_split).valid_indices)
        if len(rows) == 0:
            raise InvalidArgumentError(f"Split {fit_to_split!r} has no samples to fit the scaler to.")
        rows.flags.writeable = False
        return rows

    def _with_transformed(self, values: dict[ColumnKey, np.ndarray], drop: Sequence[ColumnKey]) -> SampleCollection:
        """A collection with ``transformed`` columns written (``values``) and removed (``drop``)."""
        columns = {}
        for (domain, key), array in values.items():
            array = np.ascontiguousarray(array)
            columns[ColumnSpec(domain, key, REP_TRANSFORMED, tuple(array.shape[1:]), array.dtype.name)] = array
        collection = self._collection.with_columns(columns) if columns else self._collection
        if drop:
            dropped = {column_name(d, k, REP_TRANSFORMED) for d, k in drop}
            collection = collection.select([n for n in collection.schema.names if n not in dropped])
        return collection

    # ------------------------------------------------------------------ replay
    def _replay(self, records: Sequence[ScalerRecord], *, refit: bool) -> tuple[dict[ColumnKey, np.ndarray], list]:
        """Re-apply records in order from ``raw``; return every key's final data and the records used.

        With ``refit``, each record's scaler is cloned unfitted and fit again on its rows.
        """
        state: dict[ColumnKey, np.ndarray] = {}
        used = []
        uuids = self._uuid_strings
        for record in records:
            arrays = []
            for key, shape in zip(record.keys, record.shapes, strict=True):
                if record.is_chained:
                    array = state.get((record.domain, key))
                    if array is None:
                        raise InvalidArgumentError(
                            f"The transform history of FeatureSet {self.label!r} is inconsistent: {record.describe()} "
                            f"reads the transformed {record.domain} {key!r}, which no earlier scaler produced."
                        )
                else:
                    array = self._collection.to_numpy(column_name(record.domain, key, REP_RAW))
                if tuple(array.shape[1:]) != tuple(shape):
                    raise InvalidArgumentError(
                        f"{record.describe()} was fit to {record.domain} {key!r} of per-sample shape {tuple(shape)}, "
                        f"but the column now has shape {tuple(array.shape[1:])}."
                    )
                arrays.append(array)
            scaler = record.scaler.clone_unfitted() if refit else record.scaler
            layout = FlattenLayout(record.shapes, record.merged_axes)
            outputs = _apply(scaler, layout, arrays, fit=refit, fit_rows=record.fit_indices, sample_ids=uuids)
            state.update({(record.domain, k): a for k, a in zip(record.keys, outputs, strict=True)})
            used.append(dataclasses.replace(record, scaler=scaler) if refit else record)
        return state, used

    def _restore_scalers_from(self, other: ScalingMixin) -> None:
        """Re-fit ``other``'s scaler records, in order, on this FeatureSet (same rows, same samples)."""
        state, records = self._replay(other._scaler_records, refit=True)
        self._collection = self._with_transformed(state, drop=())
        self._scaler_records = records

    def refit_scalers(self, fit_to_split: str) -> None:
        """Fit every scaler of the transform log again, in order, to the rows of ``fit_to_split``.

        Each record keeps its scaler's kind, columns and settings; the scaler is cloned unfitted,
        fit to the split's rows (chained scalers on the refit output of the earlier ones) and
        applied to all rows. Cross-validation does this for every fold, so that no scaler has seen
        the fold's validation rows. On error nothing changes.

        Args:
            fit_to_split: The split to fit to (a fold's training split).

        Raises:
            ValueError: If there is no such split, or it is empty.
        """
        rows = self._fit_rows(fit_to_split)
        moved = [dataclasses.replace(r, fit_to_split=fit_to_split, fit_indices=rows) for r in self._scaler_records]
        state, records = self._replay(moved, refit=True)
        self._collection = self._with_transformed(state, drop=())
        self._scaler_records = records

    # ------------------------------------------------------------------ undo
    def _undo_records(self, undone: Sequence[ScalerRecord]) -> None:
        """Remove records and recompute the transformed columns they wrote from the remaining ones."""
        remove = {id(r) for r in undone}
        remaining = [r for r in self._scaler_records if id(r) not in remove]
        affected = {(r.domain, k) for r in undone for k in r.keys}
        needs_replay = [r for r in remaining if any((r.domain, k) in affected for k in r.keys)]
        state: dict[ColumnKey, np.ndarray] = {}
        if needs_replay:
            domains = {d for d, _ in affected}
            state, _ = self._replay([r for r in remaining if r.domain in domains], refit=False)
        values = {ck: state[ck] for ck in affected if ck in state}
        drop = [ck for ck in affected if ck not in state]
        collection = self._with_transformed(values, drop=drop)
        self._collection = collection
        self._scaler_records = [dataclasses.replace(r, order=i) for i, r in enumerate(remaining)]

    def undo_last_transform(self, domain: str, keys: str | list[str] | None = None) -> None:
        """Undo the most recent transform applied to a specific subset of columns.

        Reverts the last scaler record that transformed exactly ``keys`` of ``domain`` and is not
        depended on by a more recent transform (no newer record transforms any of these keys).
        The ``transformed`` columns of the keys become what they were before that transform:
        they are recomputed from ``raw`` with the remaining fitted scalers, so the result is exact
        (bit for bit), and a key without remaining scalers loses its ``transformed`` column.
        Raw data is never changed.

        Args:
            domain (str): One of ``"features"``, ``"targets"``, ``"tags"``.
            keys (str | list[str] | None): Keys to revert. If None, all domain keys are used.

        Raises:
            ValueError: If no transform was applied to exactly these columns, if a more recent
                transform depends on it, or if the recorded shapes no longer match the data.
        """
        keys = self._scaling_keys(domain, keys)
        wanted = set(keys)
        touching = [r for r in self._scaler_records if r.domain == domain and wanted & set(r.keys)]
        if not touching:
            applied = [r.describe() for r in self._scaler_records if r.domain == domain] or "none"
            raise InvalidArgumentError(
                f"No transform was applied to {domain} {keys} of FeatureSet {self.label!r}, so there is nothing to "
                f"undo. Transforms on {domain}: {applied}."
            )
        newest = touching[-1]
        if set(newest.keys) != wanted:
            exact = [r for r in touching if set(r.keys) == wanted]
            if exact:
                raise InvalidArgumentError(
                    f"Cannot undo {exact[-1].describe()}: the more recent transform {newest.describe()} depends on it. "
                    f"Undo that first with undo_last_transform({domain!r}, keys={list(newest.keys)!r})."
                )
            raise InvalidArgumentError(
                f"No transform was applied to exactly {domain} {keys}: the most recent transform on these columns is "
                f"{newest.describe()}. Undo it with undo_last_transform({domain!r}, keys={list(newest.keys)!r})."
            )
        self._undo_records([newest])

    def undo_all_transforms(self, domain: str | None = None, keys: str | list[str] | None = None) -> None:
        """Undo every transform applied to the specified domain/keys, in reverse order.

        Undoes, newest first, every transform that touches the keys, until all are undone or a
        transform that also covers other keys prevents going further (then raises, with the newer
        transforms undone). Raw (untransformed) data is always available via
        ``get_features(..., rep="raw")``, even without undoing.

        Args:
            domain (str | None): One of ``"features"``, ``"targets"``, ``"tags"``. If None,
                reverts transforms on all domains (``keys`` are then looked up in every domain).
            keys (str | list[str] | None): Keys to fully revert. If None, all domain keys are used.

        Raises:
            ValueError: If a transform cannot be undone because it also transforms keys not
                asked for (a newer transform depends on it), or a key does not exist.
        """
        schema = self._collection.schema
        if domain is None:
            domains = list(DATA_DOMAINS)
            if keys is not None:
                by_domain: dict[str, list[str]] = {}
                for key in as_list(keys, "key"):
                    key_domain = schema.domain_of(key)
                    if key_domain is None:
                        raise InvalidArgumentError(
                            f"FeatureSet {self.label!r} has no key {key!r}; its keys are "
                            f"{[k for d in DATA_DOMAINS for k in schema.keys(d)]}."
                        )
                    by_domain.setdefault(key_domain, []).append(key)
                for key_domain, domain_keys in by_domain.items():
                    self.undo_all_transforms(key_domain, domain_keys)
                return
        else:
            domains = [check_domain(domain)]
        for current in domains:
            if keys is None:
                wanted = {k for r in self._scaler_records if r.domain == current for k in r.keys}
            else:
                wanted = set(self._scaling_keys(current, keys))
            touching = [r for r in self._scaler_records if r.domain == current and wanted & set(r.keys)]
            undone: list[ScalerRecord] = []
            blocker = None
            for record in reversed(touching):
                if set(record.keys) - wanted:
                    blocker = record
                    break
                undone.append(record)
            if undone:
                self._undo_records(undone)
            if blocker is not None:
                extra = sorted(set(blocker.keys) - wanted)
                raise InvalidArgumentError(
                    f"Cannot fully revert {current} {sorted(wanted)}: {blocker.describe()} also transforms {extra}. "
                    f"Include {extra} in keys, or undo it with undo_last_transform({current!r}, "
                    f"keys={list(blocker.keys)!r})."
                )

    # ------------------------------------------------------------------ inverting predictions
    def _inverse_chain(self, domain: str, columns: list[str]) -> list[ScalerRecord]:
        """The records to invert, newest first, to bring ``columns`` from ``transformed`` to raw units.

        Raises:
            ValueError: If a record that shaped these columns also transformed other columns, or
                transformed some of them after they had been re-scaled from raw.
        """
        wanted = set(columns)
        done: set[str] = set()
        chain = []
        for record in reversed(self._scaler_records):
            if record.domain != domain:
                continue
            touched = wanted & set(record.keys)
            if not touched or touched <= done:
                continue
            outside = set(record.keys) - wanted
            if outside or touched & done:
                what = f"also {sorted(outside)}" if outside else f"{sorted(touched & done)} before they were re-scaled"
                raise InvalidArgumentError(
                    f"Cannot invert {domain} {columns} on their own: {record.describe()} transformed {what}. Invert "
                    f"the columns it transformed together, columns={list(record.keys)!r}."
                )
            chain.append(record)
            if not record.is_chained:
                done |= set(record.keys)
        return chain

    def iter_scalers_on_cols(self, *, domain: str, columns: str | list[str]) -> list[Scaler]:
        """Iterate over scaler objects applicable to the provided columns.

        Resolves the scaler dependency chain for inverse scaling and returns the fitted scalers in
        the order to call ``inverse_transform`` in.

        Args:
            domain (str): One of ``"features"``, ``"targets"``, ``"tags"``.
            columns (str | list[str]): Column keys within the domain (no domain prefix, no rep suffix).

        Returns:
            list[Scaler]: Scalers ordered newest to oldest (empty if the columns were never scaled).

        Raises:
            ValueError: If scalers cannot be safely resolved (a scaler also transformed other columns).
        """
        columns = self._scaling_keys(domain, columns, "columns")
        return [record.scaler for record in self._inverse_chain(domain, columns)]

    def unscale_data_for_cols(
        self,
        *,
        data: np.ndarray,
        domain: str,
        columns: str | list[str],
        sample_uuids: Sequence[str] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Inverse-scale provided data using the FeatureSet's scaler history.

        Applies the inverse transforms of the scalers that produced the ``transformed``
        representation of ``columns``, newest first, to ``data`` (e.g. model predictions of
        ``targets.soh.transformed``). ``data`` holds, per sample, the values of ``columns`` in
        order: ``(N, *shape)`` for one column, ``(N, n_columns, *shape)`` for several, or any
        shape with as many values per sample (``(N, 1)`` predictions of a scalar target work).
        Where full inversion is not possible (a scaler without ``inverse_transform``, or a
        per-sample scaler without ``sample_uuids``), the data are unscaled as far as possible and
        a warning says which scalers remain.

        Args:
            data (np.ndarray): Scaled data to unscale.
            domain (str): One of ``"features"``, ``"targets"``, ``"tags"``.
            columns (str | list[str]): Column keys represented by ``data``, in order.
            sample_uuids (Sequence[str] | None): The sample UUID of every row of ``data``; needed
                only to invert per-sample scalers (e.g. ``fs["test"].get_sample_uuids()``).

        Returns:
            np.ndarray: Unscaled data, of the shape of ``data``.

        Raises:
            ValueError: If the data shape is incompatible with the columns, or scalers cannot be
                resolved (a scaler also transformed other columns).
        """
        columns = self._scaling_keys(domain, columns, "columns")
        schema = self._collection.schema
        shapes = {k: schema[column_name(domain, k, schema.reps(domain, k)[0])].shape for k in columns}
        array = np.asarray(data)
        if array.ndim == 0:
            raise InvalidArgumentError(f"data must hold one row per sample; got a scalar {data!r}.")
        n = len(array)
        sizes = [math.prod(shapes[k]) for k in columns]
        per_sample = array.size // n if n else sum(sizes)
        if per_sample != sum(sizes) or (n and array.size % n):
            raise InvalidArgumentError(
                f"data of shape {array.shape} holds {per_sample} values per sample, but {domain} columns {columns} "
                f"hold {sum(sizes)} (per-sample shapes {list(shapes.values())}). Pass data of exactly these columns, "
                "in this order."
            )
        if array.dtype.kind not in "biuf":
            raise InvalidArgumentError(f"data must be numeric; got dtype {array.dtype}.")
        chain = self._inverse_chain(domain, columns)
        flat = array.reshape(n, sum(sizes))
        offsets = np.cumsum([0, *sizes])
        values = {k: flat[:, offsets[i] : offsets[i + 1]].reshape(n, *shapes[k]) for i, k in enumerate(columns)}
        ids = None
        if sample_uuids is not None:
            ids = np.asarray(sample_uuids).astype(str)
            if ids.shape != (n,):
                raise InvalidArgumentError(f"sample_uuids must hold one UUID per row of data ({n}); got {ids.shape}.")
        problem = None
        inverted = 0
        for record in chain:
            if not record.scaler.has_inverse:
                problem = f"{record.describe()} has no inverse_transform()"
                break
            if record.scaler.per_sample and ids is None:
                problem = f"{record.describe()} keeps statistics per sample; pass sample_uuids= to invert it"
                break
            layout = FlattenLayout(record.shapes, record.merged_axes)
            matrix = layout.to_2d(layout.stack([values[k] for k in record.keys]))
            row_ids = layout.row_ids(ids) if record.scaler.per_sample else None
            out = record.scaler.inverse_transform(matrix, sample_ids=row_ids)
            for key, restored in zip(record.keys, layout.unstack(layout.from_2d(out, n)), strict=True):
                values[key] = restored
            inverted += 1
        if problem is not None:
            remaining = [r.describe() for r in chain[inverted:]]
            warn(
                f"Only partially unscaled {domain} {columns}: {problem}. Inverted {inverted} of {len(chain)} scalers; "
                f"the data returned are still transformed by {remaining}."
            )
        out = np.concatenate([values[k].reshape(n, -1) for k in columns], axis=1)
        return out.reshape(array.shape)
