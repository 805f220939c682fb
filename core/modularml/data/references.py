"""Symbolic references to FeatureSet columns, resolved later against an ExperimentContext.

A reference holds names only (the FeatureSet's label and node id, and qualified column names),
never data, so graph nodes and bindings can be built before data exists and saved as config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modularml.data.lookup import resolve_featureset
from modularml.data.schema import DATA_DOMAINS, DOMAIN_FEATURES, DOMAIN_TAGS, DOMAIN_TARGETS, parse_column_name
from modularml.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from modularml.context import ExperimentContext
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["FeatureSetColumnReference", "FeatureSetReference", "resolve_featureset"]


def _check_columns(columns: tuple[str, ...], domain: str) -> tuple[str, ...]:
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidTypeError(f"{domain} columns of a reference are a tuple of qualified names; got {columns!r}.")
    for name in columns:
        if parse_column_name(name)[0] != domain:
            raise InvalidArgumentError(f"Column {name!r} is not in the {domain} domain.")
    return tuple(columns)


@dataclass(frozen=True)
class FeatureSetReference:
    """A symbolic pointer to columns of a FeatureSet, resolvable later (no data held).

    Create one with :meth:`FeatureSet.reference`. Equal references compare and hash equal, so
    they can key mappings (e.g. graph inputs by ``(head node id, reference)``).

    Attributes:
        node_label (str): Label of the FeatureSet.
        node_id (str | None): Node id of the FeatureSet; preferred over the label when resolving.
        features (tuple[str, ...]): Qualified feature column names.
        targets (tuple[str, ...]): Qualified target column names.
        tags (tuple[str, ...]): Qualified tag column names.
    """

    node_label: str
    node_id: str | None = None
    features: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for domain in DATA_DOMAINS:
            object.__setattr__(self, domain, _check_columns(tuple(getattr(self, domain)), domain))

    @property
    def columns(self) -> list[str]:
        """All referenced columns: features, then targets, then tags."""
        return [*self.features, *self.targets, *self.tags]

    def resolve_featureset(self, ctx: ExperimentContext | None = None) -> FeatureSet:
        """The referenced FeatureSet, from ``ctx`` (the active context by default).

        Raises:
            KeyError: If it is not registered.
        """
        return resolve_featureset(self.node_label, self.node_id, ctx)

    def resolve(self, ctx: ExperimentContext | None = None) -> FeatureSetView:
        """A view of the referenced FeatureSet with exactly the referenced columns (all rows).

        Raises:
            KeyError: If the FeatureSet is not registered or lacks a referenced column.
        """
        fs = self.resolve_featureset(ctx)
        from modularml.data.view import FeatureSetView

        return FeatureSetView.from_featureset(fs, columns=self.columns, label=fs.label)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable configuration."""
        return {
            "node_label": self.node_label,
            "node_id": self.node_id,
            DOMAIN_FEATURES: list(self.features),
            DOMAIN_TARGETS: list(self.targets),
            DOMAIN_TAGS: list(self.tags),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureSetReference:
        """Rebuild a reference from :meth:`get_config` output."""
        return cls(
            node_label=config["node_label"],
            node_id=config.get("node_id"),
            features=tuple(config.get(DOMAIN_FEATURES, ())),
            targets=tuple(config.get(DOMAIN_TARGETS, ())),
            tags=tuple(config.get(DOMAIN_TAGS, ())),
        )

    def __str__(self) -> str:
        return f"{self.node_label}[{', '.join(self.columns)}]"


@dataclass(frozen=True)
class FeatureSetColumnReference:
    """A symbolic pointer to one column of a FeatureSet (no data held).

    Create one with :meth:`FeatureSet.column_reference`.

    Attributes:
        node_label (str): Label of the FeatureSet.
        node_id (str | None): Node id of the FeatureSet; preferred over the label when resolving.
        domain (str): ``features``, ``targets`` or ``tags``.
        key (str): The column key.
        rep (str): The representation (``raw`` or ``transformed``).
    """

    node_label: str
    node_id: str | None
    domain: str
    key: str
    rep: str

    def __post_init__(self) -> None:
        parse_column_name(self.column)

    @property
    def column(self) -> str:
        """The qualified column name, ``domain.key.rep``."""
        return f"{self.domain}.{self.key}.{self.rep}"

    def resolve_featureset(self, ctx: ExperimentContext | None = None) -> FeatureSet:
        """The referenced FeatureSet, from ``ctx`` (the active context by default)."""
        return resolve_featureset(self.node_label, self.node_id, ctx)

    def resolve(self, ctx: ExperimentContext | None = None) -> FeatureSetView:
        """A view of the referenced FeatureSet with only this column (all rows).

        Raises:
            KeyError: If the FeatureSet is not registered or lacks the column.
        """
        fs = self.resolve_featureset(ctx)
        from modularml.data.view import FeatureSetView

        return FeatureSetView.from_featureset(fs, columns=[self.column], label=fs.label)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable configuration."""
        return {"node_label": self.node_label, "node_id": self.node_id, "column": self.column}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureSetColumnReference:
        """Rebuild a reference from :meth:`get_config` output."""
        domain, key, rep = parse_column_name(config["column"])
        return cls(config["node_label"], config.get("node_id"), domain, key, rep)

    def __str__(self) -> str:
        return f"{self.node_label}.{self.column}"
