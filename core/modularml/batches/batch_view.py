"""``BatchView``: one batch as row indices into a FeatureSet, per role; data is gathered on demand."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.batches.batch import Batch
from modularml.batches.sample_data import ROLE_DEFAULT, RoleData, SampleData
from modularml.batches.tensors import TargetFormat, convert_value, resolve_format
from modularml.data.schema import DATA_DOMAINS, REP_RAW, REP_TRANSFORMED
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["BatchView"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class BatchView:
    """A batch as row indices into a FeatureSet, one index array per role, with per-sample weights.

    Nothing is copied: data is gathered only by :meth:`materialize_batch`. A negative index marks a
    masked (padding) sample: it has weight 0 and its row in a materialised batch is zeros.

    Args:
        source (FeatureSet | FeatureSetView): The FeatureSet the indices point into. Given a view,
            its FeatureSet is the source and the view's columns are the ones materialised; the
            indices still index the FeatureSet's rows.
        role_indices (Mapping[str, array] | array): Role -> ``int64`` row indices, all of one
            length; a bare array is the ``"default"`` role.
        role_indice_weights (Mapping[str, array] | None): Role -> per-sample ``float32`` weights;
            a role left out (or None) weighs 1 per sample.
        columns (Sequence[str] | None): Qualified column names that :meth:`materialize_batch` may
            read; every column of the source (or of the view) by default.

    Raises:
        TypeError: If ``source`` is not a FeatureSet or view, or indices are not integers.
        ValueError: If roles have different lengths, weights name unknown roles or have the wrong
            length, or there is no role.
        IndexError: If an index is beyond the source's rows.
    """

    __slots__ = ("_all_valid", "_columns", "_role_indices", "_role_weights", "_run", "_source", "_span")

    def __init__(
        self,
        source: FeatureSet | FeatureSetView,
        role_indices: Mapping[str, Any] | np.ndarray | Sequence[int],
        role_indice_weights: Mapping[str, Any] | None = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> None:
        fs, view_columns = _resolve_source(source)
        if not isinstance(role_indices, Mapping):
            role_indices = {ROLE_DEFAULT: role_indices}
        if not role_indices:
            raise InvalidArgumentError("A BatchView needs at least one role in role_indices.")
        n_rows = fs.collection.n_samples
        indices: dict[str, np.ndarray] = {}
        for role, values in role_indices.items():
            if not isinstance(role, str) or not role:
                raise InvalidTypeError(f"A role is a non-empty string; got {role!r}.")
            array = np.asarray(values)
            if array.size == 0:
                array = array.astype(np.int64)
            if array.ndim != 1 or array.dtype.kind not in "iu":
                raise InvalidTypeError(
                    f"Indices of role {role!r} are a 1-D integer array; got shape {array.shape}, dtype {array.dtype}."
                )
            if array.size and array.max() >= n_rows:
                raise IndexError(
                    f"Role {role!r} has index {int(array.max())}, beyond the {n_rows} rows of {fs.label!r}."
                )
            indices[role] = _frozen(np.array(array, dtype=np.int64))
        lengths = {role: len(a) for role, a in indices.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidArgumentError(f"Every role of a batch has the same number of samples; got {lengths}.")
        weights: dict[str, np.ndarray] | None = None
        if role_indice_weights is not None:
            if not isinstance(role_indice_weights, Mapping):
                raise InvalidTypeError(
                    f"role_indice_weights maps roles to weight arrays; got {type(role_indice_weights).__name__}."
                )
            weights = {}
            for role, values in role_indice_weights.items():
                if role not in indices:
                    raise InvalidArgumentError(
                        f"role_indice_weights names role {role!r}, which has no indices (roles: {list(indices)})."
                    )
                array = np.array(values, dtype=np.float32).reshape(-1)
                if len(array) != lengths[role]:
                    raise InvalidArgumentError(
                        f"Role {role!r} has {lengths[role]} indices but {len(array)} weights; give one weight per "
                        "sample."
                    )
                weights[role] = _frozen(array)
        if columns is None:
            columns = view_columns
        else:
            columns = list(columns)
            known = set(fs.collection.schema.names)
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise NotRegisteredError(f"Columns {unknown} are not in {fs.label!r}; it has {sorted(known)}.")
        self._source = fs
        self._role_indices = indices
        self._role_weights = weights
        self._columns = None if columns is None else tuple(columns)
        self._all_valid = None
        self._run: tuple[_GatherRun, int] | None = None
        self._span: tuple[int, int] | None = None

    @classmethod
    def trusted(
        cls,
        source: FeatureSet,
        role_indices: dict[str, np.ndarray],
        role_weights: dict[str, np.ndarray] | None,
        columns: tuple[str, ...] | None,
        all_valid: bool | None = None,
        span: tuple[int, int] | None = None,
    ) -> BatchView:
        """Build a view from validated ``int64`` indices, without checks (samplers build thousands of these).

        ``all_valid=True`` promises that no index is negative (samplers know it), sparing a check
        per batch. ``span=(start, stop)`` promises that every role's indices are exactly
        ``range(start, stop)`` (an evaluation chunk): the rows are then copied as one slice instead
        of gathered row by row, and text columns (sample UUIDs) are read-only views of the source's.
        """
        view = cls.__new__(cls)
        view._source = source
        view._role_indices = role_indices
        view._role_weights = role_weights
        view._columns = columns
        view._all_valid = True if span is not None else all_valid
        view._run = None
        view._span = span
        return view

    @classmethod
    def fully_masked(
        cls, source: FeatureSet | FeatureSetView, n_samples: int, roles: Sequence[str] = (ROLE_DEFAULT,)
    ) -> BatchView:
        """A view of ``n_samples`` masked samples per role: what an inactive sampler contributes to a step.

        Args:
            source (FeatureSet | FeatureSetView): The FeatureSet (or view) the batch belongs to.
            n_samples (int): Batch size.
            roles (Sequence[str]): Role names. Defaults to ``("default",)``.

        Returns:
            BatchView: Every index -1, every weight 0.
        """
        masked = _frozen(np.full(int(n_samples), -1, dtype=np.int64))
        return cls(source, dict.fromkeys(roles, masked))

    def masked(self) -> BatchView:
        """A fully masked view with this view's source, columns, roles and size (all weights 0)."""
        masked = _frozen(np.full(self.n_samples, -1, dtype=np.int64))
        return BatchView.trusted(self._source, dict.fromkeys(self._role_indices, masked), None, self._columns, False)

    # -- attributes ----------------------------------------------------------------------------------
    @property
    def source(self) -> FeatureSet:
        """The FeatureSet the indices point into."""
        return self._source

    @property
    def columns(self) -> list[str]:
        """Qualified names of the columns a materialised batch may hold."""
        return list(self._columns) if self._columns is not None else self._source.collection.schema.names

    @property
    def roles(self) -> list[str]:
        """Role names, in order."""
        return list(self._role_indices)

    @property
    def n_samples(self) -> int:
        """Number of samples of every role (masked ones included)."""
        return len(next(iter(self._role_indices.values())))

    def __len__(self) -> int:
        return self.n_samples

    @property
    def role_indices(self) -> Mapping[str, np.ndarray]:
        """Role -> read-only ``int64`` row indices into :attr:`source` (negative = masked)."""
        return MappingProxyType(self._role_indices)

    @property
    def role_indice_weights(self) -> Mapping[str, np.ndarray] | None:
        """Role -> per-sample weights as given by the sampler (None: every sample weighs 1)."""
        return None if self._role_weights is None else MappingProxyType(self._role_weights)

    @property
    def role_masks(self) -> dict[str, np.ndarray]:
        """Role -> boolean mask, True where the index is a real sample (>= 0)."""
        return {role: indices >= 0 for role, indices in self._role_indices.items()}

    @property
    def is_fully_masked(self) -> bool:
        """Whether no role holds a real sample."""
        return all(not (indices >= 0).any() for indices in self._role_indices.values())

    def _indices(self, role: str) -> np.ndarray:
        try:
            return self._role_indices[role]
        except KeyError:
            raise NotRegisteredError(f"No role {role!r} in this BatchView; roles: {self.roles}.") from None

    def get_role_mask(self, role: str) -> np.ndarray:
        """Boolean mask of ``role``: True for real samples, False for masked ones.

        Raises:
            KeyError: If the view has no such role.
        """
        return self._indices(role) >= 0

    def get_role_weights(self, role: str) -> np.ndarray:
        """Effective ``float32`` weights of ``role``: the sampler's weights (or 1), zero where masked.

        Raises:
            KeyError: If the view has no such role.
        """
        indices = self._indices(role)
        given = None if self._role_weights is None else self._role_weights.get(role)
        weights = np.ones(len(indices), dtype=np.float32) if given is None else np.array(given, dtype=np.float32)
        weights[indices < 0] = 0.0
        return weights

    def get_role_view(self, role: str) -> FeatureSetView:
        """A FeatureSetView of the rows of ``role`` (masked samples kept as padding indices).

        Raises:
            KeyError: If the view has no such role.
        """
        from modularml.data.view import FeatureSetView

        return FeatureSetView.trusted(self._source, self._indices(role), self.columns, role)

    # -- materialisation -------------------------------------------------------------------------------
    def materialize_batch(
        self,
        fmt: str = "numpy",
        *,
        columns: str | Sequence[str] | None = None,
        features: str | Sequence[str] | None = None,
        targets: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        rep: str | None = None,
    ) -> Batch:
        """Gather this batch's rows into a :class:`Batch` (one vectorised ``take`` per column and role).

        Column selection follows :meth:`FeatureSet.get_data`: ``columns`` takes qualified names or
        wildcards literally; ``features``/``targets``/``tags`` take keys, ``key.rep`` or wildcards.
        A domain nothing selects contributes all its columns. With ``rep=None`` (default), a key
        selected without a representation (and every key when nothing is selected) reads its
        ``transformed`` column where one exists, else ``raw``.

        Args:
            fmt (str): ``"numpy"``/``"np"`` (one array per domain; several columns stacked on
                axis 1), ``"dict_numpy"`` (key -> array), or an installed backend's format
                (``"torch"``, ``"tf"``, ``"dict_torch"``...), converted through the backend once per
                array without a copy where the framework allows. Text stays numpy.
            columns, features, targets, tags: Column selectors; see above.
            rep (str | None): Representation for selectors that name none.

        Returns:
            Batch: Features, targets, tags and sample UUIDs per role, with the role weights (zero
            where masked) and masks. Masked rows hold zeros (``""`` for text).

        Raises:
            KeyError: If a selector matches no column.
            ValueError: If ``fmt`` is unknown, or columns of different shapes are to be stacked.
        """
        target = resolve_format(fmt)
        visible = self._columns if self._columns is not None else tuple(self._source.collection.schema.names)
        selected = _select_columns(
            visible, _as_tuple(columns), _as_tuple(features), _as_tuple(targets), _as_tuple(tags), rep
        )
        return self._gather(target, selected)

    def _gather(self, target: TargetFormat, selected: tuple[tuple[tuple[str, str], ...], ...]) -> Batch:
        if self._run is not None:
            run, position = self._run
            return run.materialize(position, target, selected)
        return self._gather_alone(target, selected)

    def _gather_alone(self, target: TargetFormat, selected: tuple[tuple[tuple[str, str], ...], ...]) -> Batch:
        """This view's rows gathered by themselves (not as part of a window of its run)."""
        role_data, validity = _gather_roles(
            self._source.collection, self._role_indices, bool(self._all_valid), target, selected, self._span
        )
        return self._finish(role_data, validity, target)

    def _finish(
        self,
        role_data: dict[str, SampleData],
        validity: dict[str, tuple[np.ndarray | None, int]],
        target: TargetFormat,
    ) -> Batch:
        """The Batch of gathered ``role_data``: the view's weights (zero where masked) and masks added."""
        n = len(next(iter(self._role_indices.values())))
        if self._role_weights is None and [n_valid for _, n_valid in validity.values()] == [n] * len(validity):
            # Plain batch: the all-ones weights and all-True masks are made only if someone reads them.
            return Batch.trusted(n, RoleData.trusted(role_data), None, None, True, target)
        weights: dict[str, Any] = {}
        masks: dict[str, Any] = {}
        for role, (valid, n_valid) in validity.items():
            given = None if self._role_weights is None else self._role_weights.get(role)
            role_weights = np.ones(n, dtype=np.float32) if given is None else np.array(given, dtype=np.float32)
            if n_valid != n:
                role_weights[~valid] = 0.0
            weights[role] = convert_value(role_weights, target)
            masks[role] = convert_value(np.ones(n, dtype=bool) if valid is None else valid, target)
        return Batch.trusted(n, RoleData.trusted(role_data), weights, masks, False, target)

    def __repr__(self) -> str:
        return f"BatchView(source={self._source.label!r}, n_samples={self.n_samples}, roles={self.roles})"


def _resolve_source(source: Any) -> tuple[FeatureSet, list[str] | None]:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

    if isinstance(source, FeatureSet):
        return source, None
    if isinstance(source, FeatureSetView):
        return source.source, source.columns
    raise InvalidTypeError(f"A BatchView's source is a FeatureSet or FeatureSetView; got {type(source).__name__}.")


def _as_tuple(selectors: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if selectors is None:
        return None
    if isinstance(selectors, str):
        return (selectors,)
    return tuple(selectors)


def _take(full: np.ndarray, take: np.ndarray | slice, valid: np.ndarray | None, n_valid: int) -> np.ndarray:
    """Rows ``take`` of ``full`` (a new contiguous array); rows where ``valid`` is False become zeros / ``""``.

    ``take`` may be a slice (every row real): numbers are copied as one block (a new, writeable
    array a backend can share), text is a read-only view of ``full``.
    """
    if type(take) is slice:
        part = full[take]
        return part if full.dtype.kind in "OUS" else part.copy()
    n = len(take)
    if n_valid == 0:
        if full.dtype.kind in "OU":
            return np.full((n, *full.shape[1:]), "", dtype=full.dtype)
        return np.zeros((n, *full.shape[1:]), dtype=full.dtype)
    out = full.take(take, axis=0)
    if n_valid != n:
        out[~valid] = "" if out.dtype.kind in "OU" else 0
    return out


def _gather_roles(
    collection: Any,
    role_indices: Mapping[str, np.ndarray],
    all_valid: bool,
    target: TargetFormat,
    selected: tuple[tuple[tuple[str, str], ...], ...],
    span: tuple[int, int] | None = None,
) -> tuple[dict[str, SampleData], dict[str, tuple[np.ndarray | None, int]]]:
    """Rows ``role_indices`` of the selected columns, per role, in format ``target``.

    ``span=(start, stop)``: every role's indices are ``range(start, stop)`` (read as a slice).
    Returns the SampleData per role and, per role, the validity mask (None when every index is
    real) with the number of real samples.
    """
    role_data: dict[str, SampleData] = {}
    validity: dict[str, tuple[np.ndarray | None, int]] = {}
    for role, indices in role_indices.items():
        n = len(indices)
        if span is not None:
            valid, n_valid, take = None, n, slice(*span)
        elif all_valid:
            valid, n_valid, take = None, n, indices
        else:
            valid = indices >= 0
            n_valid = int(np.count_nonzero(valid))
            take = indices if n_valid == n else np.where(valid, indices, 0)
            if n_valid == n:
                valid = None
        domains: list[Any] = []
        for domain_columns in selected:
            if not domain_columns:
                domains.append(None)
                continue
            if len(domain_columns) > 1 and not target.as_dict:
                # One take on the cached stacked array instead of one per column and a stack per batch.
                names = tuple(name for name, _ in domain_columns)
                stacked = _take(collection.stacked_numpy(names), take, valid, n_valid)
                domains.append(convert_value(stacked, target))
                continue
            arrays = {key: _take(collection.to_numpy(name), take, valid, n_valid) for name, key in domain_columns}
            domains.append(convert_value(arrays, target))
        uuids = _take(collection.sample_uuid_strings(), take, valid, n_valid)
        role_data[role] = SampleData(features=domains[0], targets=domains[1], tags=domains[2], sample_uuids=uuids)
        validity[role] = (valid, n_valid)
    return role_data, validity


#: How many bytes of gathered rows one :class:`_GatherRun` step may hold (rows of later batches waiting to be read).
_RUN_BYTES = 4 * 1024 * 1024


class _GatherRun:
    """The batches of one sampler epoch stream, gathered several at a time.

    Reading the batches in order (what a training loop does), the first :meth:`BatchView.materialize_batch`
    of a window gathers the rows of the next few batches with one ``take`` per column and one
    conversion to the target format, and hands out slices of it (no copy) for the batches that
    follow. A window holds about ``_RUN_BYTES`` of rows and is kept per format and column selection;
    a batch read out of order, or a second time, starts a new window. The batches are the same as
    ones gathered one by one.
    """

    __slots__ = ("_views", "_windows")

    def __init__(self, views: Sequence[BatchView]) -> None:
        self._views = tuple(views)
        self._windows: dict[tuple[Any, ...], dict[int, Batch]] = {}

    @classmethod
    def link(cls, views: Sequence[BatchView]) -> None:
        """Let ``views`` (one source, same columns and roles, no view linked yet) gather together."""
        if len(views) < 2:
            return
        run = cls(views)
        for position, view in enumerate(views):
            view._run = (run, position)

    def materialize(
        self, position: int, target: TargetFormat, selected: tuple[tuple[tuple[str, str], ...], ...]
    ) -> Batch:
        key = (target, selected)
        window = self._windows.get(key)
        if window is not None:
            batch = window.pop(position, None)
            if batch is not None:
                return batch
        window = self._gather_window(position, target, selected)
        self._windows[key] = window
        return window.pop(position)

    def _gather_window(
        self, position: int, target: TargetFormat, selected: tuple[tuple[tuple[str, str], ...], ...]
    ) -> dict[int, Batch]:
        first = self._views[position]
        collection = first._source.collection
        row_bytes = collection.sample_uuid_strings().itemsize
        for domain_columns in selected:
            row_bytes += sum(_row_bytes(collection.to_numpy(name)) for name, _ in domain_columns)
        rows_budget = max(_RUN_BYTES // max(row_bytes * len(first._role_indices), 1), 1)
        stop, rows = position, 0
        while stop < len(self._views) and (stop == position or rows + self._views[stop].n_samples <= rows_budget):
            rows += self._views[stop].n_samples
            stop += 1
        views = self._views[position:stop]
        if len(views) == 1:
            return {position: first._gather_alone(target, selected)}
        role_indices = {role: np.concatenate([v._role_indices[role] for v in views]) for role in first._role_indices}
        all_valid = all(v._all_valid for v in views)
        role_data, validity = _gather_roles(collection, role_indices, all_valid, target, selected)
        window: dict[int, Batch] = {}
        start = 0
        for offset, view in enumerate(views):
            end = start + view.n_samples
            part_validity: dict[str, tuple[np.ndarray | None, int]] = {}
            for role, (valid, _) in validity.items():
                part = None if valid is None else valid[start:end]
                part_validity[role] = (part, end - start if part is None else int(np.count_nonzero(part)))
            part_data = {role: _slice_sample_data(data, start, end) for role, data in role_data.items()}
            window[position + offset] = view._finish(part_data, part_validity, target)
            start = end
        return window


def _row_bytes(array: np.ndarray) -> int:
    return array.itemsize * math.prod(array.shape[1:])


def _slice_sample_data(data: SampleData, start: int, stop: int) -> SampleData:
    """Rows ``start:stop`` of every domain of ``data`` (slices share memory with ``data``)."""
    rows = slice(start, stop)
    parts = [
        None if value is None else {k: v[rows] for k, v in value.items()} if isinstance(value, dict) else value[rows]
        for value in (data.features, data.targets, data.tags, data.sample_uuids)
    ]
    return SampleData(features=parts[0], targets=parts[1], tags=parts[2], sample_uuids=parts[3])


@functools.lru_cache(maxsize=512)
def _select_columns(
    visible: tuple[str, ...],
    columns: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    targets: tuple[str, ...] | None,
    tags: tuple[str, ...] | None,
    rep: str | None,
) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Per domain (features, targets, tags): ``(qualified name, output key)`` of the columns to gather.

    Cached: a training loop asks the same question for every batch.
    """
    from modularml.data.access import _format_keys
    from modularml.data.schema import check_rep
    from modularml.data.selectors import resolve_selectors

    if rep is not None:
        check_rep(rep)
    names = resolve_selectors(
        visible, columns=columns, features=features, targets=targets, tags=tags, rep=rep, include_all_if_empty=True
    )
    if rep is None:
        literal = set(resolve_selectors(visible, columns=columns)) if columns else set()
        chosen = set(names)
        names = [
            name
            for name in names
            if name in literal
            or not name.endswith(f".{REP_RAW}")
            or name[: -len(REP_RAW)] + REP_TRANSFORMED not in chosen
        ]
    out = []
    for domain in DATA_DOMAINS:
        in_domain = [n for n in names if n.startswith(f"{domain}.")]
        keys = _format_keys(in_domain, False, False)
        out.append(tuple(zip(in_domain, keys, strict=True)))
    return tuple(out)
