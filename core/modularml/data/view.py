"""``FeatureSetView``: an immutable row and column projection of a FeatureSet (an index array, no data)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.data.access import SampleCollectionMixin
from modularml.data.collection import readonly_indices
from modularml.data.splitting import SplitMixin
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet

__all__ = ["FeatureSetView"]


class FeatureSetView(SampleCollectionMixin, SplitMixin):
    """Immutable row and column projection of a :class:`~modularml.data.featureset.FeatureSet`.

    A view holds its source, an ``int64`` index array into the source's rows, and a list of
    column names; it copies no data. Reading data gathers the rows (one vectorised take per
    column). Negative indices mark padding: they are kept in :attr:`indices` but left out of
    :attr:`valid_indices`, which every data accessor and ``len()`` use.

    Args:
        source (FeatureSet): The FeatureSet projected.
        indices (NDArray[np.int64]): Row indices into the source.
        columns (list[str]): Qualified column names included (``sample_uuids`` is always available).
        label (str | None): Optional label (a split's name for a split).

    Raises:
        TypeError: If ``source`` is not a FeatureSet or the indices are not integers.
        IndexError: If an index is out of range.
        KeyError: If a column is not in the source.
    """

    __slots__ = ("_columns", "_indices", "_label", "_source", "_valid")

    def __init__(
        self, source: FeatureSet, indices: np.ndarray | Sequence[int], columns: list[str], label: str | None = None
    ) -> None:
        # A FeatureSet is the one SplitMixin host that is not a view (featureset.py imports this module).
        if isinstance(source, FeatureSetView) or not isinstance(source, SplitMixin):
            raise InvalidTypeError(f"A FeatureSetView's source is a FeatureSet; got {type(source).__name__}.")
        array = np.asarray(indices)
        if array.size == 0:
            array = array.astype(np.int64)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise InvalidTypeError(
                f"View indices are a 1-D integer array; got shape {array.shape} and dtype {array.dtype}."
            )
        n = source.collection.n_samples
        if array.size and array.max() >= n:
            raise IndexError(f"View index {int(array.max())} is out of range for {n} samples of {source.label!r}.")
        if array.dtype != np.int64 or array.flags.writeable:
            array = np.array(array, dtype=np.int64)  # own, immutable copy
            array.flags.writeable = False
        all_columns = source.collection.schema.names
        columns = list(columns)
        unknown = [c for c in columns if c not in all_columns]
        if unknown:
            raise ColumnNotFoundError(f"Columns {unknown} are not in {source.label!r}; it has {all_columns}.")
        if label is not None and not isinstance(label, str):
            raise InvalidTypeError(f"A view label is a string or None; got {label!r}.")
        self._init(source, array, columns, label)

    def _init(self, source: FeatureSet, indices: np.ndarray, columns: list[str], label: str | None) -> None:
        self._source = source
        self._indices = indices
        self._columns = tuple(columns)
        self._label = label
        self._valid = indices if not indices.size or indices.min() >= 0 else readonly_indices(indices[indices >= 0])

    @classmethod
    def trusted(cls, source: FeatureSet, indices: np.ndarray, columns: list[str], label: str | None) -> FeatureSetView:
        """Build a view from already validated, read-only ``int64`` indices, without checks.

        For the core's own code paths (splits, samplers), which make the indices themselves.
        """
        view = cls.__new__(cls)
        view._init(source, indices, columns, label)
        return view

    @classmethod
    def from_featureset(
        cls,
        fs: FeatureSet,
        *,
        rows: np.ndarray | None = None,
        columns: list[str] | None = None,
        label: str | None = None,
    ) -> FeatureSetView:
        """Create a view of a FeatureSet.

        Args:
            fs (FeatureSet): Source FeatureSet.
            rows (NDArray[np.int64] | None): Row indices to include. Defaults to all rows.
            columns (list[str] | None): Column names to include. Defaults to all columns.
            label (str | None): Optional label for the view.

        Returns:
            FeatureSetView: A new view over the given FeatureSet.
        """
        if rows is None:
            rows = readonly_indices(np.arange(fs.collection.n_samples, dtype=np.int64))
        if columns is None:
            columns = fs.collection.schema.names
        return cls(fs, rows, columns, label)

    # -- attributes ----------------------------------------------------------------------------
    @property
    def source(self) -> FeatureSet:
        """The parent FeatureSet this view projects."""
        return self._source

    @property
    def indices(self) -> np.ndarray:
        """Row indices into the source (read-only ``int64``; negative values mark padding)."""
        return self._indices

    @property
    def valid_indices(self) -> np.ndarray:
        """Indices >= 0 (used for data lookup)."""
        return self._valid

    @property
    def columns(self) -> list[str]:
        """Column names included in this view."""
        return list(self._columns)

    @property
    def label(self) -> str | None:
        """Optional label for this view."""
        return self._label

    def expand_columns(self, label: str | None = None) -> FeatureSetView:
        """Create a new view with the same indices and every column of the source FeatureSet.

        Args:
            label (str | None): Label of the expanded view. Defaults to ``"{self.label}_expanded"``
                (``None`` if this view has no label).

        Returns:
            FeatureSetView: A new view with all columns included.
        """
        if label is None and self._label is not None:
            label = f"{self._label}_expanded"
        return FeatureSetView.trusted(self._source, self._indices, self._source.collection.schema.names, label)

    # -- configuration ---------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Return configuration required to reconstruct this view.

        The source is referred to by label and node id; the indices are a numpy array (the
        ModularML file format stores it as ``.npy``).

        Returns:
            dict[str, Any]: View configuration.
        """
        return {
            "source_label": self._source.label,
            "source_node_id": self._source.node_id,
            "indices": np.array(self._indices),
            "columns": list(self._columns),
            "label": self._label,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureSetView:
        """Construct a view from configuration, finding its source in the active ExperimentContext.

        Args:
            config (dict[str, Any]): View configuration from :meth:`get_config`.

        Returns:
            FeatureSetView: Reconstructed view.

        Raises:
            KeyError: If the source FeatureSet is not registered in the active context.
        """
        from modularml.data.lookup import resolve_featureset

        missing = [k for k in ("source_label", "indices", "columns") if k not in config]
        if missing:
            raise InvalidArgumentError(f"A view configuration needs {missing}; got keys {sorted(config)}.")
        source = resolve_featureset(config["source_label"], config.get("source_node_id"))
        return cls(source, np.asarray(config["indices"]), list(config["columns"]), config.get("label"))

    # -- host interface -----------------------------------------------------------------------------
    def _view_type(self) -> type[FeatureSetView]:
        return FeatureSetView

    def _fs(self) -> FeatureSet:
        return self._source

    def _rows(self) -> np.ndarray:
        return self._valid

    def _row_indices(self) -> np.ndarray:
        return self._valid

    def _visible_columns(self) -> list[str]:
        return list(self._columns)

    def _as_view(self) -> FeatureSetView:
        return self

    def _applied_to(self) -> tuple[str | None, np.ndarray | None]:
        registered = self._source._splits.get(self._label) if self._label is not None else None
        if registered is not None and np.array_equal(registered.indices, self._indices):
            return self._label, None
        return None, self._valid

    # -- dunder --------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"FeatureSetView(source={self._source.label!r}, label={self._label!r}, n_samples={len(self._valid)}, "
            f"columns={len(self._columns)})"
        )
