"""``SampleCollectionMixin``: the read API shared by ``FeatureSet`` and ``FeatureSetView``.

A host says which FeatureSet it reads, which rows (``None`` for all, in order) and which
columns; everything else here is shared. Reading goes through the FeatureSet's cached numpy
columns: a FeatureSet returns the cached (read-only) arrays themselves, a view gathers its rows
with one vectorised ``take`` per column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from modularml.data.formats import format_arrays, import_pandas
from modularml.data.schema import (
    DATA_DOMAINS,
    DOMAIN_FEATURES,
    DOMAIN_TAGS,
    DOMAIN_TARGETS,
    REP_RAW,
    SAMPLE_UUIDS_COLUMN,
    check_rep,
)
from modularml.data.selectors import resolve_domain_selectors, resolve_selectors
from modularml.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet

__all__ = ["SampleCollectionMixin"]


def _format_key(name: str, include_domain_prefix: bool, include_rep_suffix: bool) -> str:
    domain, key, rep = name.split(".")
    parts = [domain] if include_domain_prefix else []
    parts.append(key)
    if include_rep_suffix:
        parts.append(rep)
    return ".".join(parts)


def _format_keys(names: list[str], include_domain_prefix: bool, include_rep_suffix: bool) -> list[str]:
    """Output keys for ``names``; the representation is kept wherever leaving it out would collide."""
    keys = [_format_key(n, include_domain_prefix, include_rep_suffix) for n in names]
    if len(set(keys)) != len(keys):
        keys = [_format_key(n, include_domain_prefix, True) for n in names]
    if len(set(keys)) != len(keys):
        keys = list(names)
    return keys


class SampleCollectionMixin:
    """Read access to samples: keys, shapes, dtypes, data in several formats, UUIDs, exports."""

    __slots__ = ()

    # -- host interface ------------------------------------------------------------------------
    def _fs(self) -> FeatureSet:
        raise NotImplementedError

    def _rows(self) -> np.ndarray | None:
        raise NotImplementedError

    def _visible_columns(self) -> list[str]:
        raise NotImplementedError

    # -- size ------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of samples (rows)."""
        rows = self._rows()
        return self._fs().collection.n_samples if rows is None else len(rows)

    def __len__(self) -> int:
        return self.n_samples

    # -- keys, shapes, dtypes ------------------------------------------------------------------------
    def _domain_columns(self, domain: str, rep: str | None = None) -> list[str]:
        prefix = f"{domain}."
        suffix = f".{rep}" if rep else ""
        return [c for c in self._visible_columns() if c.startswith(prefix) and c.endswith(suffix)]

    def _keys(self, domain: str | None, include_rep_suffix: bool, include_domain_prefix: bool) -> list[str]:
        names = self._visible_columns() if domain is None else self._domain_columns(domain)
        return list(dict.fromkeys(_format_key(n, include_domain_prefix, include_rep_suffix) for n in names))

    def get_feature_keys(self, *, include_rep_suffix: bool = False, include_domain_prefix: bool = False) -> list[str]:
        """Feature column keys, e.g. ``["voltage"]`` (or ``["features.voltage.raw"]`` with both flags).

        Args:
            include_rep_suffix (bool): Append the representation (``"voltage.raw"``). Defaults to False.
            include_domain_prefix (bool): Prepend the domain (``"features.voltage"``). Defaults to False.

        Returns:
            list[str]: Distinct keys in table order.
        """
        return self._keys(DOMAIN_FEATURES, include_rep_suffix, include_domain_prefix)

    def get_target_keys(self, *, include_rep_suffix: bool = False, include_domain_prefix: bool = False) -> list[str]:
        """Target column keys; see :meth:`get_feature_keys`."""
        return self._keys(DOMAIN_TARGETS, include_rep_suffix, include_domain_prefix)

    def get_tag_keys(self, *, include_rep_suffix: bool = False, include_domain_prefix: bool = False) -> list[str]:
        """Tag column keys; see :meth:`get_feature_keys`."""
        return self._keys(DOMAIN_TAGS, include_rep_suffix, include_domain_prefix)

    def get_all_keys(self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True) -> list[str]:
        """Keys of every data column (all domains); qualified names by default.

        Returns:
            list[str]: Distinct keys in table order (``sample_uuids`` is not a data column).
        """
        return self._keys(None, include_rep_suffix, include_domain_prefix)

    def _specs(self, domain: str, attribute: str, include_rep_suffix: bool, include_domain_prefix: bool):
        names = self._domain_columns(domain)
        keys = _format_keys(names, include_domain_prefix, include_rep_suffix)
        schema = self._fs().collection.schema
        return {k: getattr(schema[n], attribute) for k, n in zip(keys, names, strict=True)}

    def get_feature_shapes(
        self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True
    ) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of each feature column (``()`` for scalars, ``(100,)`` for a curve).

        Returns:
            dict[str, tuple[int, ...]]: Key -> shape, keys formatted as the flags say.
        """
        return self._specs(DOMAIN_FEATURES, "shape", include_rep_suffix, include_domain_prefix)

    def get_target_shapes(
        self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True
    ) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of each target column; see :meth:`get_feature_shapes`."""
        return self._specs(DOMAIN_TARGETS, "shape", include_rep_suffix, include_domain_prefix)

    def get_tag_shapes(
        self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True
    ) -> dict[str, tuple[int, ...]]:
        """Per-sample shape of each tag column; see :meth:`get_feature_shapes`."""
        return self._specs(DOMAIN_TAGS, "shape", include_rep_suffix, include_domain_prefix)

    def get_feature_dtypes(
        self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True
    ) -> dict[str, str]:
        """dtype name of each feature column (``"float32"``, ``"string"``, ...).

        Returns:
            dict[str, str]: Key -> dtype name, keys formatted as the flags say.
        """
        return self._specs(DOMAIN_FEATURES, "dtype", include_rep_suffix, include_domain_prefix)

    def get_target_dtypes(
        self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True
    ) -> dict[str, str]:
        """dtype name of each target column; see :meth:`get_feature_dtypes`."""
        return self._specs(DOMAIN_TARGETS, "dtype", include_rep_suffix, include_domain_prefix)

    def get_tag_dtypes(self, *, include_rep_suffix: bool = True, include_domain_prefix: bool = True) -> dict[str, str]:
        """dtype name of each tag column; see :meth:`get_feature_dtypes`."""
        return self._specs(DOMAIN_TAGS, "dtype", include_rep_suffix, include_domain_prefix)

    # -- data --------------------------------------------------------------------------------------
    def _gather(self, names: list[str]) -> dict[str, np.ndarray]:
        """Column name -> this host's rows of it (the cached array itself when all rows are read)."""
        collection = self._fs().collection
        rows = self._rows()
        out = {}
        for name in names:
            full = collection.to_numpy(name)
            out[name] = full if rows is None else full[rows]
        return out

    def _domain_data(
        self,
        domain: str,
        fmt: str,
        keys: str | list[str] | None,
        rep: str | None,
        include_rep_suffix: bool,
        include_domain_prefix: bool,
    ) -> Any:
        if rep is not None:
            check_rep(rep)
        names = resolve_domain_selectors(self._visible_columns(), domain, keys, rep)
        if keys is None and rep is not None and not names and self._domain_columns(domain):
            available = sorted({n.split(".")[2] for n in self._domain_columns(domain)})
            raise InvalidArgumentError(
                f"No {domain} column has representation {rep!r}; available representations: {available}."
            )
        if rep is None:
            include_rep_suffix = True
        data = self._gather(names)
        out_keys = _format_keys(names, include_domain_prefix, include_rep_suffix)
        return format_arrays(dict(zip(out_keys, data.values(), strict=True)), fmt)

    def get_features(
        self,
        fmt: str = "dict_numpy",
        *,
        keys: str | list[str] | None = None,
        rep: str | None = REP_RAW,
        include_rep_suffix: bool = False,
        include_domain_prefix: bool = False,
    ) -> Any:
        """Feature data in a chosen format.

        Args:
            fmt (str): ``"dict_numpy"`` (key -> array, the default), ``"numpy"``/``"np"`` (one array;
                several columns are stacked on axis 1 as ``(N, n_columns, *shape)``), ``"pandas"``,
                or an installed backend's format (``"torch"``, ``"tf"``) and ``"dict_<format>"``.
            keys (str | list[str] | None): Feature keys, ``key.rep`` or wildcards; all by default.
                Several keys are returned in the order given.
            rep (str | None): Representation for keys that name none (``"raw"`` by default);
                ``None`` returns every representation and keeps the suffix in the keys.
            include_rep_suffix (bool): Keys like ``"voltage.raw"``. Defaults to False (kept
                anyway where two representations of a key are returned).
            include_domain_prefix (bool): Keys like ``"features.voltage"``. Defaults to False.

        Returns:
            The data. Arrays of a FeatureSet are its cached, read-only columns; copy before
            writing to them.

        Raises:
            KeyError: If a key matches no feature column.
            ValueError: If ``fmt`` is unknown, or columns of different shapes are to be stacked.
        """
        return self._domain_data(DOMAIN_FEATURES, fmt, keys, rep, include_rep_suffix, include_domain_prefix)

    def get_targets(
        self,
        fmt: str = "dict_numpy",
        *,
        keys: str | list[str] | None = None,
        rep: str | None = REP_RAW,
        include_rep_suffix: bool = False,
        include_domain_prefix: bool = False,
    ) -> Any:
        """Target data in a chosen format; see :meth:`get_features`."""
        return self._domain_data(DOMAIN_TARGETS, fmt, keys, rep, include_rep_suffix, include_domain_prefix)

    def get_tags(
        self,
        fmt: str = "dict_numpy",
        *,
        keys: str | list[str] | None = None,
        rep: str | None = REP_RAW,
        include_rep_suffix: bool = False,
        include_domain_prefix: bool = False,
    ) -> Any:
        """Tag data in a chosen format; see :meth:`get_features`."""
        return self._domain_data(DOMAIN_TAGS, fmt, keys, rep, include_rep_suffix, include_domain_prefix)

    def get_data(
        self,
        fmt: str = "dict_numpy",
        *,
        columns: str | list[str] | None = None,
        features: str | list[str] | None = None,
        targets: str | list[str] | None = None,
        tags: str | list[str] | None = None,
        rep: str | None = None,
        include_rep_suffix: bool = True,
        include_domain_prefix: bool = True,
    ) -> Any:
        """Data of columns from any domains, in a chosen format.

        With no selector, every column is returned. Selectors follow :meth:`select`.

        Args:
            fmt (str): Output format; see :meth:`get_features`.
            columns (str | list[str] | None): Qualified names or wildcards (``"*.raw"``).
            features (str | list[str] | None): Feature selectors (domain prefix optional).
            targets (str | list[str] | None): Target selectors.
            tags (str | list[str] | None): Tag selectors.
            rep (str | None): Representation for selectors that name none; ``None`` matches all.
            include_rep_suffix (bool): Keep the representation in the keys. Defaults to True.
            include_domain_prefix (bool): Keep the domain in the keys. Defaults to True.

        Returns:
            The data, features first, then targets, then tags.

        Raises:
            KeyError: If a selector matches nothing.
        """
        nothing = all(s is None for s in (columns, features, targets, tags))
        names = resolve_selectors(
            self._visible_columns(),
            columns=columns,
            features=features,
            targets=targets,
            tags=tags,
            rep=rep,
            include_all_if_empty=nothing,
        )
        data = self._gather(names)
        out_keys = _format_keys(names, include_domain_prefix, include_rep_suffix)
        return format_arrays(dict(zip(out_keys, data.values(), strict=True)), fmt)

    def get_sample_uuids(self, fmt: str = "numpy") -> Any:
        """The sample UUIDs (UUID4 strings).

        Args:
            fmt (str): ``"numpy"`` (an object array of ``str``, the default), ``"list"``,
                ``"arrow"`` or ``"pandas"`` (a Series).

        Returns:
            The UUIDs of this host's rows, in row order.

        Raises:
            ValueError: If ``fmt`` is not one of those.
        """
        collection = self._fs().collection
        rows = self._rows()
        key = str(fmt).lower()
        if key in ("numpy", "np"):
            uuids = collection.sample_uuids()
            return uuids if rows is None else uuids[rows]
        if key == "list":
            return self.get_sample_uuids("numpy").tolist()
        if key in ("arrow", "pyarrow"):
            array = collection.sample_uuid_array()
            return array if rows is None else array.take(pa.array(rows))
        if key in ("pandas", "pd"):
            return import_pandas().Series(self.get_sample_uuids("numpy"), name=SAMPLE_UUIDS_COLUMN)
        raise InvalidArgumentError(f"Unknown fmt {fmt!r} for sample UUIDs; use 'numpy', 'list', 'arrow' or 'pandas'.")

    # -- exports ------------------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """This host's rows and columns (and ``sample_uuids``) as a new Arrow table, schema metadata included.

        A FeatureSet returns its own table (zero-copy); a view's rows are gathered.
        """
        collection = self._fs().collection
        names = self._visible_columns()
        if names != collection.schema.names:
            collection = collection.select(names)
        rows = self._rows()
        return collection.table if rows is None else collection.table.take(pa.array(rows))

    def to_pandas(self) -> Any:
        """This host's rows as a pandas DataFrame; array-valued cells hold numpy arrays.

        Columns are the qualified names plus ``sample_uuids``.

        Raises:
            ImportError: If pandas is not installed (``pip install "modularml[pandas]"``).
        """
        import_pandas()
        return self.to_arrow().to_pandas()

    # -- description ------------------------------------------------------------------------------
    def _summary_lines(self) -> list[str]:
        schema = self._fs().collection.schema
        lines = []
        for domain in DATA_DOMAINS:
            for name in self._domain_columns(domain):
                spec = schema[name]
                lines.append(f"  {name:<40} shape={spec.shape!s:<12} dtype={spec.dtype}")
        return lines

    def summary(self) -> str:
        """A short text description: label, number of samples, and every column with shape and dtype."""
        title = f"{type(self).__name__} {getattr(self, 'label', None)!r}: {self.n_samples} samples"
        return "\n".join([title, *self._summary_lines()])
