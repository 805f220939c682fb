"""``BaseSampler``: binds sources, materialises role-aligned samples, and batches them per epoch."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modularml.batches import ROLE_DEFAULT, BatchView
from modularml.batches.batch_view import _GatherRun
from modularml.data.collection import readonly_indices
from modularml.data.selectors import as_list
from modularml.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModularMLError,
    NodeNotFoundError,
    NotRegisteredError,
)
from modularml.samplers.batching import plan_epoch
from modularml.samplers.sampled_view import STREAM_DEFAULT, SampledView
from modularml.utils.environment import bars_allowed

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

__all__ = ["BaseSampler", "Samples", "SamplerNotReadyError", "sampler_class"]

logger = logging.getLogger("modularml.samplers")

FILE_KIND = "sm"
#: Purposes mixed into the seed so that searching and shuffling draw independent numbers.
_SEARCH, _SHUFFLE = 0, 1


class SamplerNotReadyError(ModularMLError, RuntimeError):
    """A sampler was asked for batches before a source was bound."""


@dataclass(frozen=True)
class Samples:
    """The role-aligned samples of one stream, before batching.

    Attributes:
        role_indices: Role -> ``(M,)`` row indices into the source FeatureSet; entry ``i`` of
            every role belongs to sample ``i`` (e.g. an anchor and its positive).
        role_weights: Role -> ``(M,)`` ``float32`` weights, or None when every sample weighs 1.
    """

    role_indices: dict[str, np.ndarray]
    role_weights: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(next(iter(self.role_indices.values())))


def sampler_class(name: str) -> type[BaseSampler]:
    """The sampler class registered under ``name`` through the ``register_samplers`` hook.

    Resolved through the plugin layer's resolver (:mod:`modularml.plugins.resolver`), as every
    class a file names.

    Raises:
        SerializationError: If no installed plugin registers it, or it is not a sampler class.
    """
    from modularml.plugins.resolver import resolve

    return resolve(name, what="sampler class", kind="samplers", base=BaseSampler)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return int(value)


def _resolve_seed(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(f"seed must be an int or None; got {seed!r}.")
    return int(seed)


class BaseSampler(ABC):
    """Base of every sampler: binds sources, builds role-aligned samples once, batches them per epoch.

    A subclass implements :attr:`role_names`, :meth:`build_samples` (the samples of one source,
    e.g. anchors with their positives) and :meth:`get_config`. The base class turns samples into
    batches: shuffled (a fresh order per epoch, derived from ``(seed, epoch)``), grouped,
    stratified, with ``drop_last``. Each bound source gives one output stream, named
    ``"default"`` for a single source and after the source FeatureSet's label otherwise.
    Batches of a source that holds every key read the FeatureSet's columns as they are when the
    batch is materialised (a ``transformed`` representation added by a later scaler is used); a
    source narrowed with ``select`` keeps its columns.

    Args:
        batch_size (int): Samples per batch. Defaults to 1.
        shuffle (bool): Shuffle the samples, with a new order every epoch. Defaults to False.
        group_by (str | Sequence[str] | None): Column(s) whose combined value defines groups;
            every batch holds samples of one group. Exclusive with ``stratify_by``.
        group_by_role (str): Role whose rows define the group. Defaults to ``"default"``.
        stratify_by (str | Sequence[str] | None): Column(s) whose combined value defines strata;
            batches interleave strata so each holds every stratum's share within rounding.
        stratify_by_role (str): Role whose rows define the stratum. Defaults to ``"default"``.
        strict_stratification (bool): Require every full batch to hold a sample of every
            stratum (else an error names the strata that are too small). Defaults to True.
        drop_last (bool): Drop a short last batch (with ``group_by``, each group's). Defaults to False.
        seed (int | None): Seed of every random choice. ``None`` draws one at construction and
            keeps it (see :attr:`seed`), so the sampler repeats itself. Defaults to None.
        show_progress (bool): Show a progress bar for sampling that takes more than a moment.
        source (FeatureSet | FeatureSetView | Sequence | None): Source(s) to bind now.

    Raises:
        ValueError: For a bad ``batch_size``, or both ``group_by`` and ``stratify_by``.
    """

    #: The name the sampler is registered under (the class name by default).
    registry_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("registry_name"):
            cls.registry_name = cls.__name__

    def __init__(
        self,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        group_by: str | Sequence[str] | None = None,
        group_by_role: str = ROLE_DEFAULT,
        stratify_by: str | Sequence[str] | None = None,
        stratify_by_role: str = ROLE_DEFAULT,
        strict_stratification: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
        show_progress: bool = True,
        source: FeatureSet | FeatureSetView | Sequence[FeatureSet | FeatureSetView] | None = None,
    ) -> None:
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.group_by = as_list(group_by, "group_by column") or None
        self.stratify_by = as_list(stratify_by, "stratify_by column") or None
        if self.group_by and self.stratify_by:
            raise InvalidArgumentError(
                f"group_by={self.group_by} and stratify_by={self.stratify_by} cannot be combined: give one of them."
            )
        for name, role in (("group_by_role", group_by_role), ("stratify_by_role", stratify_by_role)):
            if role not in self.role_names:
                raise InvalidArgumentError(f"{name}={role!r} is not a role of this sampler; roles: {self.role_names}.")
        self.group_by_role = group_by_role
        self.stratify_by_role = stratify_by_role
        self.strict_stratification = bool(strict_stratification)
        self.drop_last = bool(drop_last)
        self.seed = _resolve_seed(seed)
        self.show_progress = bool(show_progress)
        self._streams: dict[str, FeatureSetView] = {}
        self._samples: dict[str, Samples] | None = None
        self._epoch_view: SampledView | None = None
        self._code_cache: dict[int, tuple[np.ndarray, list[Any]]] = {}  # group/stratum codes per stream
        if source is not None:
            self.bind_sources(source)

    # -- what a subclass provides ------------------------------------------------------------------
    @property
    @abstractmethod
    def role_names(self) -> list[str]:
        """The roles of every batch this sampler produces (e.g. ``["anchor", "pair"]``)."""

    @abstractmethod
    def build_samples(self, view: FeatureSetView, rng: np.random.Generator, progress: Callable[[int], None]) -> Samples:
        """Build the role-aligned samples of one source view (before batching).

        Args:
            view: The bound source (its ``valid_indices`` are the rows to sample).
            rng: The generator for this source's random choices (derived from the seed).
            progress: Call with a number of rows finished, for the progress bar (its total is
                ``len(view)``).

        Returns:
            Samples: Row indices into ``view.source`` per role, and optional weights.

        Raises:
            ValueError: If no valid sample can be built (an impossible condition).
        """

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON values), without the source; :meth:`from_config` rebuilds the sampler."""

    def _progress_total(self, view: FeatureSetView) -> int:
        """The total that :meth:`build_samples` reports progress against."""
        return len(view)

    def _batching_config(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "group_by": self.group_by,
            "stratify_by": self.stratify_by,
            "strict_stratification": self.strict_stratification,
            "drop_last": self.drop_last,
            "seed": self.seed,
            "show_progress": self.show_progress,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BaseSampler:
        """Build a sampler (unbound) from :meth:`get_config` output.

        Raises:
            TypeError: If called on ``BaseSampler`` itself (use the sampler's class, or
                :func:`sampler_class` with its registered name), or the config does not fit.
        """
        if cls is BaseSampler:
            raise InvalidTypeError(
                "Call from_config on a sampler class (e.g. SimpleSampler.from_config), or look the class up by its "
                "registered name with modularml.samplers.sampler_class(name)."
            )
        return cls(**dict(config))

    # -- sources -----------------------------------------------------------------------------------------
    def bind_sources(self, sources: FeatureSet | FeatureSetView | Sequence[FeatureSet | FeatureSetView]) -> None:
        """Bind the data to sample from; any earlier binding and batches are dropped.

        Args:
            sources: A FeatureSet or view, or several (one output stream each, named after the
                FeatureSet's label; one source gives the stream ``"default"``).

        Raises:
            TypeError: If a source is not a FeatureSet or FeatureSetView.
            ValueError: If no source is given, or two sources share a FeatureSet label.
        """
        from modularml.data.featureset import FeatureSet
        from modularml.data.view import FeatureSetView

        items = [sources] if isinstance(sources, (FeatureSet, FeatureSetView)) else list(sources)
        if not items:
            raise InvalidArgumentError("bind_sources() needs at least one FeatureSet or FeatureSetView.")
        views: list[FeatureSetView] = []
        for item in items:
            if isinstance(item, FeatureSet):
                views.append(item.to_view())
            elif isinstance(item, FeatureSetView):
                views.append(item)
            else:
                raise InvalidTypeError(f"A sampler samples FeatureSets or FeatureSetViews; got {type(item).__name__}.")
        if len(views) == 1:
            streams = {STREAM_DEFAULT: views[0]}
        else:
            streams = {}
            for view in views:
                name = view.source.label
                if name in streams:
                    raise InvalidArgumentError(
                        f"Two sources belong to FeatureSet {name!r}; streams are named by FeatureSet, so bind one view "
                        "per FeatureSet (use one sampler per split)."
                    )
                streams[name] = view
        self._streams = streams
        self._samples = None
        self._epoch_view = None
        self._code_cache = {}

    @property
    def sources(self) -> list[FeatureSetView]:
        """The bound source views, one per stream."""
        return list(self._streams.values())

    @property
    def is_bound(self) -> bool:
        """Whether a source is bound."""
        return bool(self._streams)

    @property
    def is_materialized(self) -> bool:
        """Whether the samples have been built (:meth:`materialize_batches`)."""
        return self._samples is not None

    @property
    def stream_names(self) -> list[str]:
        """Names of the output streams (``["default"]`` for one source).

        Raises:
            RuntimeError: If no source is bound.
        """
        self._require_bound()
        return list(self._streams)

    def _require_bound(self) -> None:
        if not self._streams:
            raise SamplerNotReadyError(
                f"{type(self).__name__} has no source: pass source= when constructing it, or call "
                "bind_sources([featureset_or_view]) first."
            )

    # -- materialisation -------------------------------------------------------------------------------
    def _rng(self, purpose: int, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(purpose, *key)))

    def materialize_batches(self, show_progress: bool | None = None) -> SampledView:
        """Build the samples of every bound source and return the batches of epoch 0.

        The expensive part (e.g. the pair search) runs once; each epoch's batches are then
        derived from the samples (see :meth:`sampled_view`).

        Args:
            show_progress (bool | None): Show a progress bar for sampling that takes more than a
                moment; defaults to the sampler's ``show_progress``.

        Returns:
            SampledView: Stream name -> list of BatchViews for epoch 0.

        Raises:
            RuntimeError: If no source is bound.
            ValueError: If a sampler's conditions leave no valid sample.
        """
        self._require_bound()
        show = self.show_progress if show_progress is None else bool(show_progress)
        samples: dict[str, Samples] = {}
        for index, (name, view) in enumerate(self._streams.items()):
            with _progress_bar(show, self._progress_total(view), f"{type(self).__name__} ({name})") as progress:
                samples[name] = self.build_samples(view, self._rng(_SEARCH, index), progress)
            logger.debug("%s: %d samples in stream %s", type(self).__name__, len(samples[name]), name)
        self._samples = samples
        self._epoch_view = None
        self._code_cache = {}
        return self.sampled_view(0)

    def _ensure_materialized(self) -> dict[str, Samples]:
        if self._samples is None:
            self._require_bound()
            self.materialize_batches()
        assert self._samples is not None
        return self._samples

    def sampled_view(self, epoch: int = 0) -> SampledView:
        """The batches of ``epoch`` (materialising first if needed).

        With ``shuffle=True`` each epoch has its own order, derived from ``(seed, epoch)``; with
        ``shuffle=False`` every epoch is the same. The number of batches never changes.

        Raises:
            RuntimeError: If no source is bound.
        """
        epoch = _check_int("epoch", epoch, 0)
        samples = self._ensure_materialized()
        cached = self._epoch_view
        if cached is not None and (cached.epoch == epoch or not self.shuffle):
            return cached if cached.epoch == epoch else SampledView.trusted(cached._streams, epoch)
        streams = {
            name: self._batch_stream(index, self._streams[name], samples[name], epoch)
            for index, name in enumerate(self._streams)
        }
        self._epoch_view = SampledView.trusted(streams, epoch)
        return self._epoch_view

    def _codes(self, view: FeatureSetView, rows: np.ndarray, selectors: list[str]) -> tuple[np.ndarray, list[Any]]:
        from modularml.data.view import FeatureSetView
        from modularml.splitters.random_splitter import row_group_codes

        rows_view = FeatureSetView.trusted(view.source, readonly_indices(rows), view.columns, None)
        return row_group_codes(rows_view, selectors)

    def _batch_stream(self, index: int, view: FeatureSetView, samples: Samples, epoch: int) -> list[BatchView]:
        n = len(samples)
        rng = self._rng(_SHUFFLE, index, epoch) if self.shuffle else None
        group_codes = strata_codes = None
        strata_keys: list[Any] = []
        if self.group_by or self.stratify_by:
            cached = self._code_cache.get(index)
            if cached is None:
                role = self.group_by_role if self.group_by else self.stratify_by_role
                cached = self._codes(view, samples.role_indices[role], self.group_by or self.stratify_by or [])
                self._code_cache[index] = cached
            if self.group_by:
                group_codes = cached[0]
            else:
                strata_codes, strata_keys = cached
        roles = list(samples.role_indices)
        plain_shuffle = rng is not None and group_codes is None and strata_codes is None
        if plain_shuffle and len(roles) == 1 and samples.role_weights is None:
            # one array to shuffle: permute it directly (the same order as indexing with a permutation)
            _, starts, stops = plan_epoch(n, batch_size=self.batch_size, drop_last=self.drop_last, rng=None)
            ordered = {roles[0]: _readonly(rng.permutation(samples.role_indices[roles[0]]))}
        else:
            order, starts, stops = plan_epoch(
                n,
                batch_size=self.batch_size,
                drop_last=self.drop_last,
                rng=rng,
                group_codes=group_codes,
                strata_codes=strata_codes,
                strata_keys=[k[0] if len(k) == 1 else k for k in strata_keys],
                strict_stratification=self.strict_stratification,
            )
            ordered = {role: _readonly(idx[order]) for role, idx in samples.role_indices.items()}
        weights = None
        if samples.role_weights:
            weights = {role: _readonly(w[order]) for role, w in samples.role_weights.items()}
        source, columns, trusted = view.source, _batch_columns(view), BatchView.trusted
        bounds = zip(starts.tolist(), stops.tolist(), strict=True)
        if weights is None and len(roles) == 1:
            role, indices = roles[0], ordered[roles[0]]
            batches = [trusted(source, {role: indices[a:b]}, None, columns, True) for a, b in bounds]
        elif weights is None:
            batches = [trusted(source, {r: i[a:b] for r, i in ordered.items()}, None, columns, True) for a, b in bounds]
        else:
            batches = [
                trusted(
                    source,
                    {r: i[a:b] for r, i in ordered.items()},
                    {r: w[a:b] for r, w in weights.items()},
                    columns,
                    True,
                )
                for a, b in bounds
            ]
        _GatherRun.link(batches)  # read in order, they gather several batches' rows at once
        return batches

    # -- batches -----------------------------------------------------------------------------------------
    def get_batches(self, stream: str | None = None, *, epoch: int = 0) -> list[BatchView]:
        """The batches of one output stream for one epoch.

        Args:
            stream (str | None): Stream name; None (or ``"default"``) selects the only stream.
            epoch (int): The epoch (its shuffle order). Defaults to 0.

        Returns:
            list[BatchView]: The batches, in order.

        Raises:
            RuntimeError: If no source is bound.
            KeyError: If there is no such stream.
            ValueError: If ``stream`` is None and there are several streams.
        """
        return self.sampled_view(epoch).get_batches(stream)

    def get_stream(self, name: str, *, epoch: int = 0) -> list[BatchView]:
        """The batches of the stream called ``name`` for ``epoch``; see :meth:`get_batches`."""
        return self.sampled_view(epoch).get_stream(name)

    @property
    def num_batches(self) -> int:
        """Batches per epoch (the same for every epoch; the shortest stream's where streams differ).

        Raises:
            RuntimeError: If no source is bound.
        """
        return self.sampled_view(0).num_batches

    # -- state and files ---------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Runtime state: the bound sources (as view configs) and the materialised samples.

        Returns:
            dict[str, Any]: ``sources`` (stream -> view config, or None when unbound) and
            ``samples`` (stream -> role indices and weights, or None when not materialised).
        """
        sources = {name: view.get_config() for name, view in self._streams.items()} or None
        samples = None
        if self._samples is not None:
            samples = {
                name: {
                    "role_indices": {r: np.asarray(i) for r, i in s.role_indices.items()},
                    "role_weights": None
                    if s.role_weights is None
                    else {r: np.asarray(w) for r, w in s.role_weights.items()},
                }
                for name, s in self._samples.items()
            }
        return {"sources": sources, "samples": samples}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore sources and samples from :meth:`get_state` output.

        The source FeatureSets are found in the active ExperimentContext by node id or label.

        Raises:
            KeyError: If a source FeatureSet is not registered in the active context.
            ValueError: If the state is malformed or its indices do not fit the sources.
        """
        from modularml.data.view import FeatureSetView

        if not isinstance(state, Mapping):
            raise InvalidArgumentError("A sampler state is the dict returned by get_state().")
        sources = state.get("sources")
        if not sources:
            self._streams, self._samples, self._epoch_view, self._code_cache = {}, None, None, {}
            return
        try:
            streams = {name: FeatureSetView.from_config(config) for name, config in sources.items()}
        except NotRegisteredError as exc:
            raise NodeNotFoundError(
                f"The sampler was bound to a FeatureSet that is not registered in the active ExperimentContext "
                f"({exc}). Create or load that FeatureSet first, or rebind the sampler with bind_sources()."
            ) from None
        samples: dict[str, Samples] | None = None
        saved = state.get("samples")
        if saved is not None:
            samples = {}
            for name, entry in saved.items():
                if name not in streams:
                    raise InvalidArgumentError(f"Saved samples for stream {name!r}, which has no source.")
                samples[name] = self._checked_samples(name, streams[name], entry)
        self._streams = streams
        self._samples = samples
        self._epoch_view = None
        self._code_cache = {}

    def _checked_samples(self, name: str, view: FeatureSetView, entry: Mapping[str, Any]) -> Samples:
        n_rows = view.source.collection.n_samples
        indices = {}
        for role, values in dict(entry["role_indices"]).items():
            array = np.asarray(values)
            if (
                array.ndim != 1
                or array.dtype.kind not in "iu"
                or (array.size and not 0 <= array.min() <= array.max() < n_rows)
            ):
                raise InvalidArgumentError(
                    f"Saved indices of role {role!r} in stream {name!r} do not fit the {n_rows} rows of "
                    f"{view.source.label!r}."
                )
            indices[role] = readonly_indices(array)
        if sorted(indices) != sorted(self.role_names):
            raise InvalidArgumentError(f"Saved samples have roles {sorted(indices)}; expected {self.role_names}.")
        weights = entry.get("role_weights")
        if weights is not None:
            weights = {role: _readonly(np.asarray(w, dtype=np.float32)) for role, w in dict(weights).items()}
        return Samples({r: indices[r] for r in self.role_names}, weights)

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Save the sampler (config, bound sources and materialised samples) as ``<name>.sm.mml``.

        The sources are stored by reference (FeatureSet label and node id, and the view's row
        indices), not as data.

        Args:
            filepath (str | Path): Where to save; the name is completed to ``<name>.sm.mml``.
            overwrite (bool): Replace an existing file. Defaults to False.

        Returns:
            Path: The path written.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If a condition holds a function that cannot be saved (a lambda).
        """
        from modularml.io import write_container

        config, state = self.get_config(), self.get_state()
        return write_container(
            filepath, kind=FILE_KIND, cls=type(self), config=config, state=state, overwrite=overwrite
        )

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False) -> BaseSampler:
        """Load a sampler saved with :meth:`save`; it gives the same batches as the saved one.

        Loading never runs code from the file; the sampler class must come from modularml or an
        installed plugin, and a similarity condition's metric function named in it is imported
        only with ``allow_packaged_code=True``.

        Args:
            filepath (str | Path): The file (``<name>.sm.mml``; the suffix may be left out).
            allow_packaged_code (bool): Allow classes and metric functions from any module (your own).

        Returns:
            BaseSampler: The sampler, bound to its sources again when they were bound.

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is damaged, not a sampler, or not a ``cls``.
            KeyError: If a source FeatureSet is not registered in the active ExperimentContext.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading, resolve

        container = read_container(filepath, kind=FILE_KIND)
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="sampler"):
            sampler_cls = resolve(
                container.class_path, what="sampler class", entry="manifest['class']", kind="samplers", base=cls
            )
            sampler = sampler_cls.from_config(container.config)
            sampler.set_state(container.state)
        return sampler

    # -- comparison -----------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _batch_columns(view: FeatureSetView) -> tuple[str, ...] | None:
    """Columns that batches of ``view`` read: None (all current columns) if the view holds every key.

    Batches of a view over every key read the FeatureSet's columns as they are when a batch is
    materialised, so a representation added later (a scaler's ``transformed``) is used; a view
    narrowed with ``select`` keeps its own columns.
    """
    keys = {name.rsplit(".", 1)[0] for name in view.columns}
    if all(name.rsplit(".", 1)[0] in keys for name in view.source.collection.schema.names):
        return None
    return tuple(view.columns)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class _progress_bar:
    """A tqdm bar that appears only after half a second (sampling that takes more than a moment)."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self.enabled, self.total, self.description = enabled, total, description
        self.bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled or not bars_allowed():  # no control codes into a file or a pipe
            return lambda done: None
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc=self.description, delay=0.5, leave=False, unit="sample")
        return self.bar.update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
