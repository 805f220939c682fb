"""``BaseSplitter``, the interface of every splitter, and ``SplitterRecord``, how an application is kept."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modularml.data.collection import readonly_indices
from modularml.errors import InvalidArgumentError, InvalidLabelError, InvalidTypeError, SerializationError
from modularml.utils.naming import validate_label

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["BaseSplitter", "SplitterRecord", "check_split_name", "splitter_class"]


def check_split_name(name: object) -> str:
    """Return ``name`` if it can name a split (a valid label), else raise.

    Raises:
        InvalidArgumentError: If it is not a non-empty string free of ``.``, space, ``/``, ``\\``, ``:``.
    """
    try:
        return validate_label(name, what="split name")
    except InvalidLabelError as exc:
        raise InvalidArgumentError(str(exc)) from None


class BaseSplitter(ABC):
    """Turns a FeatureSet (or a view of one) into named row subsets.

    A subclass implements :meth:`split_indices` and :meth:`get_config`; it is registered by name
    through the ``register_splitters`` plugin hook so that a saved record can rebuild it. The
    constructor arguments must round-trip through :meth:`get_config` / :meth:`from_config`.
    """

    #: The name the splitter is registered under (the class name by default).
    registry_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("registry_name"):
            cls.registry_name = cls.__name__

    @abstractmethod
    def split_indices(self, view: FeatureSetView) -> dict[str, np.ndarray]:
        """Compute the splits of ``view``.

        Args:
            view: The rows to split (``view.valid_indices`` are the source rows).

        Returns:
            dict[str, np.ndarray]: Split name -> sorted ``int64`` row indices into ``view.source``.
            The arrays are taken over (made read-only): return fresh arrays.

        Raises:
            ValueError: If a split would be empty or the configuration does not fit the data.
        """

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a dict that :meth:`from_config` accepts."""

    @property
    def is_serializable(self) -> bool:
        """Whether :meth:`get_config` holds only JSON values (so the splitter can be saved)."""
        return True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BaseSplitter:
        """Build a splitter from :meth:`get_config` output."""
        return cls(**dict(config))

    def split(self, source: FeatureSet | FeatureSetView) -> dict[str, FeatureSetView]:
        """Split ``source`` into views, without registering them anywhere.

        Use ``FeatureSet.split(splitter)`` (or ``view.split``) to register the splits and record
        the splitter on the FeatureSet.

        Returns:
            dict[str, FeatureSetView]: Split name -> view over all columns of the source FeatureSet.

        Raises:
            ValueError: If a split would be empty or a split name is invalid.
        """
        from modularml.data.featureset import FeatureSet
        from modularml.data.view import FeatureSetView

        if isinstance(source, FeatureSet):
            view = source.to_view()
        elif isinstance(source, FeatureSetView):
            view = source
        else:
            raise InvalidTypeError(f"A splitter splits a FeatureSet or a FeatureSetView; got {type(source).__name__}.")
        parts = self.split_indices(view)
        fs = view.source
        columns = fs.get_all_keys(include_rep_suffix=True, include_domain_prefix=True)
        views = {}
        for name, indices in parts.items():
            check_split_name(name)
            if len(indices) == 0:
                raise InvalidArgumentError(
                    f"{type(self).__name__} produced an empty split {name!r} from {len(view)} samples; change the "
                    "ratios or conditions so that every split gets at least one sample."
                )
            views[name] = FeatureSetView._trusted(fs, readonly_indices(indices), columns, name)
        return views

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def splitter_class(name: str) -> type[BaseSplitter]:
    """The splitter class registered under ``name`` through the ``register_splitters`` hook.

    Resolved through the plugin layer's resolver (:mod:`modularml.plugins.resolver`), as every
    class a file names.

    Raises:
        SerializationError: If no installed plugin registers it, or it is not a splitter class.
    """
    from modularml.plugins.resolver import resolve

    return resolve(name, what="splitter class", kind="splitters", base=BaseSplitter)


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

    splitter: BaseSplitter | None
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
