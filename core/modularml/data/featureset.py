"""``FeatureSet``: samples (features, targets, tags) in one Arrow table, with named splits."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from modularml.context import ExperimentNode
from modularml.data.access import SampleCollectionMixin
from modularml.data.collection import SampleCollection, readonly_indices
from modularml.data.scaling import ScalingMixin
from modularml.data.schema import (
    DATA_DOMAINS,
    DOMAIN_FEATURES,
    DOMAIN_TAGS,
    DOMAIN_TARGETS,
    REP_RAW,
    SampleSchema,
    check_rep,
)
from modularml.data.selectors import as_list, find_column, resolve_domain_selectors, resolve_selectors
from modularml.data.splitting import SplitMixin, missing_split_message
from modularml.data.view import FeatureSetView
from modularml.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NodeCollisionError,
    NotRegisteredError,
)
from modularml.utils.display import html_section, html_table, show_diagram
from modularml.utils.naming import validate_label

if TYPE_CHECKING:
    import pandas as pd

    from modularml.data.records import ScalerRecord, SplitterRecord
    from modularml.data.references import FeatureSetColumnReference, FeatureSetReference

__all__ = ["FeatureSet"]

FILE_KIND = "fs"


def _check_roles(**roles: list[str]) -> None:
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in names:
            if name in seen and seen[name] != role:
                raise InvalidArgumentError(
                    f"Column {name!r} is given as both {seen[name]} and {role}; keys are unique across domains. "
                    "Give it one role (copy the column under another name to use it twice)."
                )
            seen[name] = role


class FeatureSet(ExperimentNode, SplitMixin, SampleCollectionMixin, ScalingMixin):
    """Unified FeatureSet backed by a single :class:`~modularml.data.collection.SampleCollection`.

    Each representation (e.g. ``raw``, ``transformed``) lives within the same SampleCollection
    rather than as separate sub-collections: one Arrow table with a column per
    ``domain.key.rep`` and a ``sample_uuids`` column. Splits store indices into this collection
    (they are :class:`FeatureSetView` objects, never copies). Scalers fit with
    :meth:`fit_transform` write each key's ``transformed`` representation and are recorded, so
    that they can be undone, re-applied to copies, and inverted on predictions.

    Args:
        label (str): Unique identifier for this node.
        collection (SampleCollection): The samples.
        **kwargs: ``node_id`` (str) and ``register`` (bool, default True), used only for
            de-serialization.

    Raises:
        TypeError: If ``collection`` is not a SampleCollection or an unknown keyword is given.
        ValueError: If the label is invalid or (under the ``error`` policy) already registered.
    """

    def __init__(self, label: str, collection: SampleCollection, **kwargs: Any) -> None:
        node_id = kwargs.pop("node_id", None)
        register = kwargs.pop("register", True)
        if kwargs:
            raise InvalidTypeError(
                f"FeatureSet() got unexpected keyword arguments {sorted(kwargs)}; it accepts node_id and register."
            )
        if not isinstance(collection, SampleCollection):
            raise InvalidTypeError(
                f"A FeatureSet wraps a SampleCollection; got {type(collection).__name__}. Use FeatureSet.from_dict, "
                "from_pandas or from_pyarrow_table to build one from data."
            )
        self._collection = collection
        self._splits: dict[str, FeatureSetView] = {}
        self._split_parents: dict[str, str | None] = {}
        self._split_records: list[SplitterRecord] = []
        self._scaler_records: list[ScalerRecord] = []
        super().__init__(label, node_id=node_id, register=register)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dict(
        cls,
        label: str,
        data: Mapping[str, Sequence[Any]],
        feature_keys: str | list[str],
        target_keys: str | list[str],
        tag_keys: str | list[str] | None = None,
    ) -> FeatureSet:
        """Construct a FeatureSet from a Python dictionary of column data.

        Each key of ``data`` is a column; each value holds one entry per sample: a scalar, or a
        fixed-shape array (lists of lists, numpy arrays, pandas Series and backend tensors are
        accepted). Unlike :meth:`from_pandas`, no grouping is applied. Keys of ``data`` not named
        in any role are ignored. Numeric data is copied once into Arrow memory.

        Args:
            label (str): Label to assign to this FeatureSet.
            data (dict[str, Sequence[Any]]): Column name -> values, all of the same length.
            feature_keys (str | list[str]): Column name(s) in ``data`` to be used as features.
            target_keys (str | list[str]): Column name(s) in ``data`` to be used as targets.
            tag_keys (str | list[str] | None, optional): Column name(s) of identifying or
                categorical metadata (e.g. cell ID). Defaults to None.

        Returns:
            FeatureSet: A new Arrow-backed FeatureSet.

        Raises:
            ValueError: If required keys are missing, column lengths are inconsistent, a column is
                ragged, or a key is invalid or given two roles.

        Example:
            >>> fs = FeatureSet.from_dict(
            ...     label="CycleData",
            ...     data={"voltage": [[3.1, 3.2, 3.3], [3.2, 3.3, 3.4]], "soh": [0.95, 0.93], "cell_id": ["A1", "A2"]},
            ...     feature_keys=["voltage"],
            ...     target_keys=["soh"],
            ...     tag_keys=["cell_id"],
            ... )
        """
        validate_label(label)
        if not isinstance(data, Mapping):
            raise InvalidTypeError(f"data is a mapping of column name -> values; got {type(data).__name__}.")
        roles = {
            DOMAIN_FEATURES: as_list(feature_keys, "feature key"),
            DOMAIN_TARGETS: as_list(target_keys, "target key"),
            DOMAIN_TAGS: as_list(tag_keys, "tag key"),
        }
        _check_roles(**roles)
        for names in roles.values():
            for name in names:
                if name not in data:
                    raise InvalidArgumentError(
                        f"Key {name!r} is not in data; data has keys {list(data)}. Check feature_keys, target_keys "
                        "and tag_keys."
                    )
        collection = SampleCollection.from_columns(*({k: data[k] for k in roles[d]} for d in DATA_DOMAINS))
        return cls(label, collection)

    @classmethod
    def from_pandas(
        cls,
        label: str,
        df: pd.DataFrame,
        feature_cols: str | list[str],
        target_cols: str | list[str],
        group_by: str | list[str] | None = None,
        tag_cols: str | list[str] | None = None,
        sort_by: str | list[str] | None = None,
        *,
        pad_value: Any = None,
    ) -> FeatureSet:
        """Construct a FeatureSet from a pandas DataFrame (column-wise storage).

        Without ``group_by`` every row is a sample. With ``group_by``, all rows sharing a group key
        become one sample, in sorted order of the group keys: rows are ordered by ``sort_by``
        within each group (stable, so ties keep their input order), each feature column becomes a
        per-sample array of the group's values, and each target or tag column becomes a scalar if
        it is constant within every group (e.g. a state of health per cycle) or an array
        otherwise. Groups must have equal numbers of rows unless ``pad_value`` is given.

        Args:
            label (str): Name to assign to this FeatureSet.
            df (pd.DataFrame): Input DataFrame of raw experimental or measurement data.
            feature_cols (str | list[str]): Column name(s) in ``df`` to be used as features.
            target_cols (str | list[str]): Column name(s) in ``df`` to be used as targets.
            group_by (str | list[str] | None, optional): Column name(s) defining group
                boundaries; each group becomes one sample. If None, each row is a sample.
            tag_cols (str | list[str] | None, optional): Column name(s) of identifying or
                categorical metadata (e.g. cell ID, protocol, SOC). Defaults to None.
            sort_by (str | list[str] | None, optional): Column name(s) used to sort rows within
                each group before aggregation. Only used when ``group_by`` is given; ignored
                otherwise (with a warning). Defaults to None.
            pad_value (Any, optional): Pad groups with fewer rows than the longest at the end with
                this value (e.g. ``np.nan``). None (default) raises for groups of different lengths.

        Returns:
            FeatureSet: A new Arrow-backed FeatureSet.

        Raises:
            ImportError: If pandas is not installed (``pip install "modularml[pandas]"``).
            KeyError: If a named column is not in ``df``.
            ValueError: For NaN group keys, ragged groups without ``pad_value``, a column given
                two roles, or invalid column names.

        Example:
            >>> fs = FeatureSet.from_pandas(
            ...     label="PulseData",
            ...     df=raw_df,
            ...     feature_cols=["voltage", "current"],
            ...     target_cols=["soh"],
            ...     group_by=["cell_id", "cycle_index"],
            ...     tag_cols=["temperature", "cell_id"],
            ...     sort_by="timestamp",
            ... )
        """
        from modularml.data.builders import collection_from_pandas
        from modularml.data.formats import import_pandas

        import_pandas()
        validate_label(label)
        domains = {
            DOMAIN_FEATURES: as_list(feature_cols, "feature column"),
            DOMAIN_TARGETS: as_list(target_cols, "target column"),
            DOMAIN_TAGS: as_list(tag_cols, "tag column"),
        }
        _check_roles(**domains)
        collection = collection_from_pandas(
            df, domains, as_list(group_by, "group_by column"), as_list(sort_by, "sort_by column"), pad_value
        )
        return cls(label, collection)

    from_df = from_pandas

    @classmethod
    def from_pyarrow_table(
        cls, label: str, table: pa.Table, schema: SampleSchema | None = None, **kwargs: Any
    ) -> FeatureSet:
        """Construct a new FeatureSet from an existing PyArrow table.

        Columns must be named ``domain.key.rep``; a ``sample_uuids`` column is used if present
        (else UUIDs are generated). Variable-size list columns of equal lengths become
        fixed-shape columns. Buffers are shared with ``table`` (no copy).

        Args:
            label (str): Label to assign to this FeatureSet.
            table (pa.Table): Table to build FeatureSet around.
            schema (SampleSchema | None): Schema the table must follow; inferred if None.
            kwargs: Passed to the constructor (``node_id``, ``register``).

        Returns:
            FeatureSet: New FeatureSet instance.

        Raises:
            ValueError: If a column name, type or value is not valid for a FeatureSet.
        """
        validate_label(label)
        return cls(label, SampleCollection(table, schema), **kwargs)

    @classmethod
    def from_config(cls, config: dict[str, Any], *, register: bool = True) -> FeatureSet:
        """Instantiate an empty FeatureSet (no rows or columns) from :meth:`get_config` output.

        Use :meth:`set_state` to fill it.
        """
        try:
            label = config["label"]
        except (KeyError, TypeError):
            raise InvalidArgumentError(f"A FeatureSet config needs a 'label'; got {config!r:.200}.") from None
        empty = SampleCollection(pa.table({}))
        return cls(label, empty, node_id=config.get("node_id"), register=register)

    # ------------------------------------------------------------------ collection access
    @property
    def collection(self) -> SampleCollection:
        """The underlying SampleCollection (Arrow table + schema + numpy cache)."""
        return self._collection

    @property
    def schema(self) -> SampleSchema:
        """The SampleSchema of the data columns."""
        return self._collection.schema

    def _view_type(self) -> type[FeatureSetView]:
        return FeatureSetView

    def _fs(self) -> FeatureSet:
        return self

    def _rows(self) -> None:
        return None

    def _row_indices(self) -> np.ndarray:
        return np.arange(self._collection.n_samples, dtype=np.int64)

    def _visible_columns(self) -> list[str]:
        return self._collection.schema.names

    def _as_view(self) -> FeatureSetView:
        return self.to_view()

    def _applied_to(self) -> tuple[str | None, np.ndarray | None]:
        return None, None

    def find_column(self, selector: str) -> str:
        return find_column(self._collection.schema.names, selector)

    def to_view(self) -> FeatureSetView:
        """Create a FeatureSetView over the entire FeatureSet (all rows and columns; no data copied).

        Returns:
            FeatureSetView: A view referencing all rows, labelled like this FeatureSet.
        """
        rows = readonly_indices(np.arange(self._collection.n_samples, dtype=np.int64))
        return FeatureSetView.trusted(self, rows, self._collection.schema.names, self.label)

    # ------------------------------------------------------------------ splits
    def _add_splits(
        self, views: Mapping[str, FeatureSetView], *, record: SplitterRecord | None, parent: str | None
    ) -> None:
        """Register several splits at once (all or none) and the record that made them."""
        taken = [name for name in views if name in self._splits]
        if taken:
            raise InvalidArgumentError(
                f"Split {taken[0]!r} already exists in FeatureSet {self.label!r} (splits: {self.available_splits}). "
                "Choose another split name, or remove the existing splits with clear_splits()."
            )
        for name, view in views.items():
            self._splits[name] = view
            self._split_parents[name] = parent
        if record is not None:
            self._split_records.append(record)

    def add_split(self, split: FeatureSetView) -> None:
        """Adds a new FeatureSetView as a split, named by its label.

        Args:
            split (FeatureSetView): The new view to add; its source must be this FeatureSet and its
                label a new split name.

        Raises:
            TypeError: If ``split`` is not a FeatureSetView.
            ValueError: If it belongs to another FeatureSet, has no valid label, or the name exists.
        """
        from modularml.data.records import check_split_name

        if not isinstance(split, FeatureSetView):
            raise InvalidTypeError(f"add_split() takes a FeatureSetView; got {type(split).__name__}.")
        if split.source is not self:
            raise InvalidArgumentError(
                f"The view belongs to FeatureSet {split.source.label!r}, not {self.label!r}; a split must index this "
                "FeatureSet's rows."
            )
        if split.label is None:
            raise InvalidArgumentError("A split is named by its view's label; this view has none. Pass label=...")
        check_split_name(split.label)
        self._add_splits({split.label: split}, record=None, parent=None)

    def get_split(self, split_name: str) -> FeatureSetView:
        """Gets the specified split, rebuilding the FeatureSetView if necessary.

        A split covers all columns of the FeatureSet: if columns (e.g. a transformed
        representation) were added after the split was defined, the cached view is re-created
        with all current columns, keeping its row indices.

        Args:
            split_name (str): Name of the split to retrieve.

        Returns:
            FeatureSetView: A no-copy, row-wise view of the FeatureSet.

        Raises:
            KeyError: If there is no split of that name (the message lists the splits).
        """
        view = self._splits.get(split_name)
        if view is None:
            raise NotRegisteredError(
                f"No split: {missing_split_message(self.label, split_name, self.available_splits)}"
            )
        columns = self._collection.schema.names
        if view.columns != columns:
            view = FeatureSetView.trusted(self, view.indices, columns, split_name)
            self._splits[split_name] = view
        return view

    def __getitem__(self, split_name: str) -> FeatureSetView:
        """``fs["train"]`` is ``fs.get_split("train")``."""
        return self.get_split(split_name)

    @property
    def splits(self) -> dict[str, FeatureSetView]:
        """Mapping of split names to their FeatureSetView instances."""
        return {name: self.get_split(name) for name in self._splits}

    @property
    def available_splits(self) -> list[str]:
        """All available splits.

        Returns:
            list[str]: Available split names, in the order they were added.
        """
        return list(self._splits)

    @property
    def n_splits(self) -> int:
        """Number of registered splits."""
        return len(self._splits)

    @property
    def split_records(self) -> list[SplitterRecord]:
        """The splitter records, oldest first (what ``copy(restore_splits=True)`` re-applies)."""
        return list(self._split_records)

    def remove_split(self, split_name: str, *, missing_ok: bool = False) -> None:
        """Remove one split (its rows stay in the FeatureSet; splitter records are kept).

        Raises:
            KeyError: If there is no such split and ``missing_ok`` is False.
        """
        if split_name not in self._splits:
            if missing_ok:
                return
            raise NotRegisteredError(
                f"FeatureSet {self.label!r} has no split {split_name!r}; available splits: {self.available_splits}."
            )
        del self._splits[split_name]
        self._split_parents.pop(split_name, None)

    def clear_splits(self) -> None:
        """Remove every split and splitter record."""
        self._splits.clear()
        self._split_parents.clear()
        self._split_records.clear()

    # ------------------------------------------------------------------ references
    def reference(
        self,
        columns: list[str] | None = None,
        *,
        features: str | list[str] | None = None,
        targets: str | list[str] | None = None,
        tags: str | list[str] | None = None,
        rep: str | None = None,
    ) -> FeatureSetReference:
        """Create a FeatureSetReference object pointing to columns in this FeatureSet.

        Uses the column-selection semantics of :meth:`select`, but returns a symbolic reference
        instead of a view or data. All columns of a domain are included unless that domain is
        specified (by its keyword or by a name in ``columns``); for such unspecified domains one
        representation per key is taken: ``rep`` where the key has it, else ``raw``.

        Args:
            columns (list[str] | None): Fully-qualified column names (or wildcards) to reference.
            features (str | list[str] | None): Feature-domain selectors; exact names or wildcards;
                the domain prefix may be omitted.
            targets (str | list[str] | None): Target-domain selectors, same rules.
            tags (str | list[str] | None): Tag-domain selectors, same rules.
            rep (str | None): Default representation suffix applied when a selector omits one.

        Returns:
            FeatureSetReference: The reference (no data).

        Raises:
            KeyError: If a selector matches no column.
        """
        from modularml.data.references import FeatureSetReference

        if rep is not None:
            check_rep(rep)
        names = self._collection.schema.names
        chosen = resolve_selectors(names, columns=columns, features=features, targets=targets, tags=tags, rep=rep)
        by_domain: dict[str, list[str]] = {d: [c for c in chosen if c.startswith(f"{d}.")] for d in DATA_DOMAINS}
        for domain in DATA_DOMAINS:
            if not by_domain[domain]:
                by_domain[domain] = self._default_columns(domain, rep)
        return FeatureSetReference(
            node_label=self.label,
            node_id=self.node_id,
            features=tuple(by_domain[DOMAIN_FEATURES]),
            targets=tuple(by_domain[DOMAIN_TARGETS]),
            tags=tuple(by_domain[DOMAIN_TAGS]),
        )

    def _default_columns(self, domain: str, rep: str | None) -> list[str]:
        schema = self._collection.schema
        out = []
        for key in schema.keys(domain):
            reps = schema.reps(domain, key)
            chosen = rep if rep in reps else (REP_RAW if REP_RAW in reps else reps[0])
            out.append(f"{domain}.{key}.{chosen}")
        return out

    def column_reference(
        self,
        column: str | None = None,
        *,
        feature: str | None = None,
        target: str | None = None,
        tag: str | None = None,
        rep: str | None = None,
    ) -> FeatureSetColumnReference:
        """Create a reference to a single column in this FeatureSet.

        Give exactly one of ``column``, ``feature``, ``target`` and ``tag``. Where a selector
        names no representation and the key has several, ``rep`` decides, else ``raw``.

        Args:
            column (str | None): Fully-qualified column name (e.g. ``"features.voltage.raw"``).
            feature (str | None): Feature-domain selector; the domain prefix may be omitted.
            target (str | None): Target-domain selector.
            tag (str | None): Tag-domain selector.
            rep (str | None): Default representation suffix applied when a selector omits one.

        Returns:
            FeatureSetColumnReference: The reference (no data).

        Raises:
            KeyError: If nothing matches.
            ValueError: If not exactly one selector is given, or it matches several columns.
        """
        from modularml.data.references import FeatureSetColumnReference
        from modularml.data.schema import parse_column_name

        given = {k: v for k, v in {"column": column, "feature": feature, "target": target, "tag": tag}.items() if v}
        if len(given) != 1:
            raise InvalidArgumentError(
                f"Give exactly one of column, feature, target or tag; got {sorted(given) or 'none'}."
            )
        if rep is not None:
            check_rep(rep)
        names = self._collection.schema.names
        if column is not None:
            matches = resolve_selectors(names, columns=column)
        else:
            domain = {"feature": DOMAIN_FEATURES, "target": DOMAIN_TARGETS, "tag": DOMAIN_TAGS}[next(iter(given))]
            matches = resolve_domain_selectors(names, domain, next(iter(given.values())), rep)
        if len(matches) > 1:
            preferred = [m for m in matches if m.endswith(f".{rep or REP_RAW}")]
            if len({m.split(".")[1] for m in matches}) == 1 and len(preferred) == 1:
                matches = preferred
        if len(matches) != 1:
            raise InvalidArgumentError(f"{next(iter(given.values()))!r} matches several columns {matches}; name one.")
        domain, key, col_rep = parse_column_name(matches[0])
        return FeatureSetColumnReference(self.label, self.node_id, domain, key, col_rep)

    # ------------------------------------------------------------------ copies
    def copy(
        self,
        *,
        label: str | None = None,
        share_raw_data_buffer: bool = True,
        restore_splits: bool = False,
        restore_scalers: bool = False,
        register: bool = False,
    ) -> FeatureSet:
        """Create a copy of this FeatureSet with optional state restoration.

        The copy holds the raw columns and the sample UUIDs (the same UUIDs: it holds the same
        samples). By default the PyArrow buffers of the raw data are shared (zero-copy). Splits
        are re-created by re-applying the splitter records in order (splits added directly with
        :meth:`add_split`, and records whose splitter could not be saved, are copied by index).
        This method does not mutate the original FeatureSet.

        Args:
            label (str | None, optional): Label for the new FeatureSet. Defaults to
                ``"{label}_copy"``.
            share_raw_data_buffer (bool, optional): Share the raw Arrow buffers (True, default) or
                deep-copy the table (False).
            restore_splits (bool, optional): Re-apply all splitter records to regenerate splits.
            restore_scalers (bool, optional): Re-apply all scaler records in order to regenerate
                transformed representations: every scaler is cloned unfitted and fit again to the
                same rows, which reproduces the transformed data exactly. Requires ``restore_splits``.
            register (bool, optional): Register the copy in the active ExperimentContext (with a
                new node id). Must be True if ``restore_scalers`` or ``restore_splits`` is enabled.

        Returns:
            FeatureSet: A new FeatureSet instance.

        Raises:
            ValueError: If ``restore_scalers`` is set without ``restore_splits``, or either
                without ``register``.
        """
        if restore_scalers and not restore_splits:
            raise InvalidArgumentError(
                "restore_scalers=True needs restore_splits=True: scalers may have been fit to a split."
            )
        if (restore_splits or restore_scalers) and not register:
            raise InvalidArgumentError(
                "restore_splits / restore_scalers need register=True: restored splits and scalers are recorded "
                "against the copy's node id."
            )
        new_label = validate_label(label if label is not None else f"{self.label}_copy")
        raw = self._collection.select(self._collection.column_names(rep=REP_RAW))
        collection = raw.shallow_copy() if share_raw_data_buffer else raw.deep_copy()
        copy = FeatureSet(new_label, collection, register=False)
        if restore_splits:
            copy._restore_splits_from(self)
        if restore_scalers:
            copy._restore_scalers_from(self)
        if register:
            from modularml.context import ExperimentContext

            ExperimentContext.get_active().register_experiment_node(copy)
        return copy

    def _restore_splits_from(self, other: FeatureSet) -> None:
        """Re-create ``other``'s splits on this FeatureSet (same rows) by replaying its records."""
        from modularml.data.records import SplitterRecord

        for record in other._split_records:
            if record.splitter is None:
                views = {n: FeatureSetView.trusted(self, other._splits[n].indices, [], n) for n in record.split_names}
                self._add_splits(views, record=record, parent=record.applied_to)
                continue
            if record.applied_to is not None:
                base = self.get_split(record.applied_to)
            elif record.applied_to_indices is not None:
                base = FeatureSetView.trusted(self, record.applied_to_indices, self.schema.names, None)
            else:
                base = self.to_view()
            views = record.splitter.split(base)
            clone = SplitterRecord(
                record.splitter, tuple(views), record.applied_to, record.applied_to_indices, record.description
            )
            self._add_splits(views, record=clone, parent=record.applied_to)
        for name in other._splits:
            if name not in self._splits:
                view = other._splits[name]
                self._add_splits(
                    {name: FeatureSetView.trusted(self, view.indices, [], name)},
                    record=None,
                    parent=other._split_parents.get(name),
                )
        self._splits = {name: self._splits[name] for name in other._splits if name in self._splits}

    # ------------------------------------------------------------------ config, state, files
    def get_config(self) -> dict[str, Any]:
        """Configuration (label and node id) from which :meth:`from_config` builds an empty FeatureSet."""
        return {"label": self.label, "node_id": self.node_id}

    def get_state(self) -> dict[str, Any]:
        """Runtime state (i.e., PyArrow table and records) of the FeatureSet.

        Returns:
            dict[str, Any]: ``table`` (the Arrow table, transformed columns included), ``splits``
            (name -> indices), ``split_parents`` (name -> the split it was made from, or None),
            ``split_records`` (file-ready splitter records) and ``scaler_records`` (file-ready
            scaler records: config and fitted state of every scaler, as JSON and arrays).
        """
        return {
            "table": self._collection.table,
            "splits": {name: np.asarray(view.indices) for name, view in self._splits.items()},
            "split_parents": dict(self._split_parents),
            "split_records": [record.to_state() for record in self._split_records],
            "scaler_records": [record.to_state() for record in self._scaler_records],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore FeatureSet from semantic state.

        Everything is validated before anything changes: on error the FeatureSet is unchanged.

        Args:
            state (dict[str, Any]): State dictionary produced by :meth:`get_state`.

        Raises:
            ValueError: If the state is malformed (a bad table, or split indices out of range).
        """
        from modularml.data.records import ScalerRecord, SplitterRecord, check_split_name

        if not isinstance(state, Mapping) or not isinstance(state.get("table"), pa.Table):
            raise InvalidArgumentError("A FeatureSet state is the dict returned by get_state(), with a 'table'.")
        collection = SampleCollection(state["table"])
        n = collection.n_samples
        split_indices: dict[str, np.ndarray] = {}
        for name, indices in dict(state.get("splits") or {}).items():
            check_split_name(name)
            array = np.asarray(indices)
            if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
                raise InvalidArgumentError(f"Split {name!r} must be a 1-D integer index array; got {array.dtype}.")
            if array.size and (array.max() >= n or array.min() < -n):
                raise InvalidArgumentError(f"Split {name!r} has indices beyond the table's {n} rows.")
            split_indices[name] = readonly_indices(array.copy() if array.flags.writeable else array)
        parents = dict(state.get("split_parents") or {})
        records = [SplitterRecord.from_state(r) for r in state.get("split_records") or []]
        scaler_records = [ScalerRecord.from_state(r) for r in state.get("scaler_records") or []]
        for record in scaler_records:
            missing = [k for k in record.keys if k not in collection.schema.keys(record.domain)]
            if missing:
                raise InvalidArgumentError(
                    f"Scaler record {record.describe()} names {record.domain} keys {missing} that the table lacks."
                )
        self._collection = collection
        self._splits = {
            name: FeatureSetView.trusted(self, indices, collection.schema.names, name)
            for name, indices in split_indices.items()
        }
        self._split_parents = {name: parents.get(name) for name in self._splits}
        self._split_records = records
        self._scaler_records = [dataclasses.replace(r, order=i) for i, r in enumerate(scaler_records)]

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serializes this FeatureSet to the specified filepath.

        The file is a ModularML container (see :mod:`modularml.io`): the Arrow table (raw and
        transformed columns) as IPC, the splits and the scalers' fitted state as ``.npy`` arrays,
        records and config as JSON; nothing is pickled. It is written atomically.

        Args:
            filepath (Path): File location to save to. The name is completed to the ModularML
                extension schema ``<name>.fs.mml``.
            overwrite (bool, optional): Whether to overwrite any existing file at the save
                location. Defaults to False.

        Returns:
            Path: The actual filepath the FeatureSet is saved to.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If a splitter or scaler record holds a value that cannot be saved.
        """
        from modularml.io import write_container

        return write_container(
            filepath,
            kind=FILE_KIND,
            cls=FeatureSet,
            config=self.get_config(),
            state=self.get_state(),
            overwrite=overwrite,
        )

    @classmethod
    def load(
        cls, filepath: str | Path, *, allow_packaged_code: bool = False, overwrite: bool = False, mmap: bool = False
    ) -> FeatureSet:
        """Load a FeatureSet from file.

        Loading never unpickles or runs code from the file; the classes of its scaler records
        resolve through the plugin layer (registered scalers, or scikit-learn-like classes of
        modularml, installed plugins and backend frameworks). The file is read and checked
        completely (every byte against the checksum its manifest records) before the
        ExperimentContext is touched. The table's columns are read-only views of the bytes read.

        Args:
            filepath (Path): File location of a previously saved FeatureSet.
            allow_packaged_code (bool): Allow scaler classes from any module (your own).
            overwrite (bool): Whether to replace any colliding node registrations in the active
                ExperimentContext. If False, a new node_id is assigned to the reloaded FeatureSet
                (a label collision is then handled by the context's registration policy).
                Otherwise, the existing node with the saved node_id or label is removed from the
                registry and the reloaded FeatureSet takes the saved node_id. Defaults to False.
            mmap (bool): Map the file read-only instead of reading it into memory: no copy, and
                the pages stay the page cache's. Safe when the file is later replaced by a
                ModularML save (a rename) or deleted; not when another program rewrites it in
                place (see :func:`modularml.io.read_container`). Defaults to False.

        Returns:
            FeatureSet: The reloaded FeatureSet.

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is truncated, corrupt, foreign, or not a FeatureSet.
        """
        from modularml.context import ExperimentContext
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND, mmap=mmap)
        container.require_class(FeatureSet)
        config = dict(container.config)
        saved_id = config.get("node_id")
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="FeatureSet data"):
            fs = cls.from_config({**config, "node_id": saved_id if overwrite else None}, register=False)
            fs.set_state(container.state)
        ctx = ExperimentContext.get_active()
        if overwrite:
            if saved_id and ctx.has_node(node_id=saved_id):
                ctx.remove_node(node_id=saved_id)
            if ctx.has_node(label=fs.label):
                ctx.remove_node(label=fs.label)
        try:
            ctx.register_experiment_node(fs)
        except NodeCollisionError as exc:
            raise NodeCollisionError(f"{exc} To replace it with the loaded FeatureSet, pass overwrite=True.") from None
        return fs

    # ------------------------------------------------------------------ display
    def visualize(
        self,
        *,
        show_features: bool = True,
        show_targets: bool = True,
        show_tags: bool | str = "root",
        show_overlaps: bool = True,
    ) -> str | None:
        """Displays a mermaid diagram for this FeatureSet in a notebook; returns its text elsewhere.

        In a notebook the diagram is displayed (through IPython, imported only then) and None is
        returned, so the cell shows it once; in a script the text is returned.

        Args:
            show_features (bool, optional): Show feature columns and shapes on nodes. Defaults to True.
            show_targets (bool, optional): Show target columns and shapes on nodes. Defaults to True.
            show_tags (bool | str, optional): Show tag columns and shapes. ``"root"`` shows them only
                on the FeatureSet root node, True on all splits, False nowhere. Defaults to ``"root"``.
            show_overlaps (bool, optional): Show overlap counts between splits. Defaults to True.

        Returns:
            str | None: The mermaid diagram text; None in a notebook, where it is displayed.
        """
        from modularml.data.diagram import featureset_mermaid

        text = featureset_mermaid(
            self,
            show_features=show_features,
            show_targets=show_targets,
            show_tags=show_tags,
            show_overlaps=show_overlaps,
        )
        return show_diagram(text)

    def _repr_html_(self) -> str:
        """A notebook's view: the columns (shape, dtype), the splits and the scalers."""
        schema = self._collection.schema
        columns = [
            (domain, name.split(".")[1], name.rsplit(".", 1)[1], schema[name].shape, schema[name].dtype)
            for domain in ("features", "targets", "tags")
            for name in self._domain_columns(domain)
        ]
        parts = [html_table(["domain", "key", "rep", "shape per sample", "dtype"], columns)]
        if self._splits:
            parts.append(html_table(["split", "samples"], [(n, len(v.valid_indices)) for n, v in self._splits.items()]))
        if self._scaler_records:
            parts.append(html_table(["scaler"], [(r.describe(),) for r in self._scaler_records]))
        return html_section(f"FeatureSet {self.label!r}: {self.n_samples} samples", *parts)

    def plot_splits(self, *, group_by: str | None = None, ax: Any = None) -> Any:
        """The sizes of the splits, and with ``group_by`` (a tag key) which splits each group's samples are in.

        Needs matplotlib (``pip install "modularml[plot]"``); returns the figure without showing it.
        See :func:`modularml.data.plots.plot_splits`.

        Example:
            >>> fs.split_random({"train": 0.8, "val": 0.2}, group_by="cell_id")
            >>> fs.plot_splits(group_by="cell_id").savefig("splits.png")
        """
        from modularml.data.plots import plot_splits

        return plot_splits(self, group_by=group_by, ax=ax)

    # ------------------------------------------------------------------ dunder
    def summary(self) -> str:
        """A short text description: label, samples, columns (shape, dtype) and splits."""
        lines = [super().summary()]
        for name in self._splits:
            lines.append(f"  split {name!r}: {len(self._splits[name].valid_indices)} samples")
        for record in self._scaler_records:
            lines.append(f"  scaler {record.describe()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"FeatureSet(label={self.label!r}, n_samples={self.n_samples}, "
            f"columns={self._collection.schema.names}, splits={self.available_splits})"
        )
