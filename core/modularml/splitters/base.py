"""``BaseSplitter``, the interface of every splitter (applications are kept as ``data.records.SplitterRecord``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modularml.data.collection import readonly_indices
from modularml.data.records import SplitterRecord, check_split_name, splitter_class
from modularml.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["BaseSplitter", "SplitterRecord", "check_split_name", "splitter_class"]

# The records of applications live with the data (modularml.data.records); named here too for splitter authors.


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
            views[name] = FeatureSetView.trusted(fs, readonly_indices(indices), columns, name)
        return views

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
