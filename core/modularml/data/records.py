"""Records a FeatureSet keeps of what was applied to it: splitters and scalers.

A :class:`SplitterRecord` keeps one application of a splitter (so that it can be re-applied), a
:class:`ScalerRecord` one fitted scaler applied to columns (so that it can be undone and inverted).
They live with the data they describe; the splitter and scaler classes they name are found by
registered name through the plugin layer, so this module imports no splitter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modularml.data.collection import readonly_indices
from modularml.data.schema import REP_RAW, REP_TRANSFORMED, check_domain
from modularml.errors import InvalidArgumentError, InvalidLabelError, SerializationError
from modularml.scalers.scaler import Scaler
from modularml.utils.naming import validate_label

__all__ = ["ScalerRecord", "SplitterLike", "SplitterRecord", "check_split_name", "splitter_class"]


class SplitterLike(Protocol):
    """What a record needs of a splitter (:class:`~modularml.splitters.BaseSplitter` provides it)."""

    registry_name: str

    @property
    def is_serializable(self) -> bool:
        """Whether :meth:`get_config` holds only values a file can store."""
        ...

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments."""
        ...

    def split(self, source: Any) -> dict[str, Any]:
        """Split name -> view of ``source``."""
        ...


def splitter_class(name: str) -> Any:
    """The splitter class registered under ``name`` through the ``register_splitters`` hook.

    Resolved through the plugin layer's resolver (:mod:`modularml.plugins.resolver`), as every
    class a file names.

    Raises:
        SerializationError: If no installed plugin registers it.
    """
    from modularml.plugins.resolver import resolve

    return resolve(name, what="splitter class", kind="splitters")


def check_split_name(name: object) -> str:
    """Return ``name`` if it can name a split (a valid label), else raise.

    Raises:
        InvalidArgumentError: If it is not a non-empty string free of ``.``, space, ``/``, ``\\``, ``:``.
    """
    try:
        return validate_label(name, what="split name")
    except InvalidLabelError as exc:
        raise InvalidArgumentError(str(exc)) from None


@dataclass(frozen=True)
class SplitterRecord:
    """One application of a splitter to a FeatureSet, kept so that it can be re-applied.

    Attributes:
        splitter: The splitter (a private copy), or ``None`` when it could not be saved (a
            condition with a Python function); such a record is restored from ``split_indices``.
        split_names: The splits it produced, in order.
        applied_to: The split it was applied to (a split of a split), or ``None`` for the whole
            FeatureSet or an unnamed view.
        applied_to_indices: The rows of the unnamed view it was applied to, if any.
        description: ``repr`` of the splitter, kept for display when ``splitter`` is ``None``.
    """

    splitter: SplitterLike | None
    split_names: tuple[str, ...]
    applied_to: str | None = None
    applied_to_indices: np.ndarray | None = None
    description: str = ""

    def to_state(self) -> dict[str, Any]:
        """A file-ready description (JSON values and numpy arrays)."""
        splitter = self.splitter
        entry: dict[str, Any] | None = None
        if splitter is not None and splitter.is_serializable:
            entry = {"name": splitter.registry_name, "config": splitter.get_config()}
        return {
            "splitter": entry,
            "split_names": list(self.split_names),
            "applied_to": self.applied_to,
            "applied_to_indices": self.applied_to_indices,
            "description": self.description or repr(splitter),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SplitterRecord:
        """Rebuild a record from :meth:`to_state` output; the splitter class comes from the registry.

        Raises:
            SerializationError: If the state is malformed or names a splitter no plugin provides.
        """
        try:
            entry = state["splitter"]
            splitter = None
            if entry is not None:
                splitter = splitter_class(entry["name"]).from_config(entry["config"])
            indices = state.get("applied_to_indices")
            return cls(
                splitter=splitter,
                split_names=tuple(state["split_names"]),
                applied_to=state.get("applied_to"),
                applied_to_indices=None if indices is None else readonly_indices(indices),
                description=str(state.get("description", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"Invalid splitter record {dict(state)!r:.300}: {exc}") from exc


@dataclass(frozen=True)
class ScalerRecord:
    """One application of a fitted scaler to columns of one domain of a FeatureSet.

    Attributes:
        order: Position in the FeatureSet's transform log (0 is the oldest).
        domain: ``features``, ``targets`` or ``tags``.
        keys: The column keys scaled together, in the order they were stacked.
        input_rep: The representation the scaler read: ``transformed`` where every key had one
            (the scaler is chained on earlier ones), else ``raw``.
        shapes: Per-sample shape of every key's column when the scaler was fit.
        merged_axes: The axes merged to flatten the stacked columns to 2-D, or ``None``.
        fit_to_split: The split the scaler was fit to, or ``None`` for all samples.
        fit_indices: The rows the scaler was fit to (``None`` for all rows).
        scaler: The fitted scaler.
    """

    order: int
    domain: str
    keys: tuple[str, ...]
    input_rep: str
    shapes: tuple[tuple[int, ...], ...]
    merged_axes: tuple[int, ...] | None
    fit_to_split: str | None
    fit_indices: np.ndarray | None
    scaler: Scaler

    @property
    def is_chained(self) -> bool:
        """Whether the scaler read the ``transformed`` representation (it depends on older records)."""
        return self.input_rep == REP_TRANSFORMED

    def describe(self) -> str:
        """A one-line description: ``#0 StandardScaler on targets ['soh'] (fit to 'train')``."""
        fit = f"fit to {self.fit_to_split!r}" if self.fit_to_split else "fit to all samples"
        chained = ", chained on transformed" if self.is_chained else ""
        return f"#{self.order} {self.scaler.scaler_name} on {self.domain} {list(self.keys)} ({fit}{chained})"

    def to_state(self) -> dict[str, Any]:
        """A file-ready description (JSON values and numpy arrays; the scaler as config and state)."""
        return {
            "order": self.order,
            "domain": self.domain,
            "keys": list(self.keys),
            "input_rep": self.input_rep,
            "shapes": [list(shape) for shape in self.shapes],
            "merged_axes": None if self.merged_axes is None else list(self.merged_axes),
            "fit_to_split": self.fit_to_split,
            "fit_indices": None if self.fit_indices is None else np.asarray(self.fit_indices),
            "scaler": {"config": self.scaler.get_config(), "state": self.scaler.get_state()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ScalerRecord:
        """Rebuild a record from :meth:`to_state` output.

        Raises:
            SerializationError: If the state is malformed or names a scaler that is not available.
        """
        try:
            scaler = Scaler.from_config(state["scaler"]["config"])
            scaler.set_state(state["scaler"]["state"])
            input_rep = state["input_rep"]
            if input_rep not in (REP_RAW, REP_TRANSFORMED):
                raise ValueError(f"unknown input representation {input_rep!r}")
            merged = state.get("merged_axes")
            indices = state.get("fit_indices")
            keys = tuple(str(k) for k in state["keys"])
            shapes = tuple(tuple(int(s) for s in shape) for shape in state["shapes"])
            if len(keys) != len(shapes) or not keys:
                raise ValueError(f"{len(keys)} keys but {len(shapes)} shapes")
            return cls(
                order=int(state["order"]),
                domain=check_domain(state["domain"]),
                keys=keys,
                input_rep=input_rep,
                shapes=shapes,
                merged_axes=None if merged is None else tuple(int(a) for a in merged),
                fit_to_split=state.get("fit_to_split"),
                fit_indices=None if indices is None else readonly_indices(indices),
                scaler=scaler,
            )
        except SerializationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"Invalid scaler record {dict(state)!r:.300}: {exc}") from exc

    def __repr__(self) -> str:
        return f"ScalerRecord({self.describe()})"
