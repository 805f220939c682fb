"""Experiment config files: an experiment described in TOML or JSON, built and run from the file alone.

The file holds a config of the same shape as :meth:`Experiment.get_config` (``label``,
``registration_policy``, ``execution_plan``, ``callbacks``), completed with what the experiment's
context holds: the FeatureSets (``featuresets``: a saved FeatureSet file, named by a path relative
to the config file, or one of the core's example datasets with its splits and scalers), the model
graph (``model_graph``, :meth:`ModelGraph.get_config`), the callbacks of each phase (a
``callbacks`` list in the phase's entry) and an optional ``seed``. :func:`write_experiment_file`
writes one (``Experiment.to_file``) and saves the FeatureSets next to it, so the folder runs on
another machine; :func:`read_experiment_file` (``Experiment.from_file``) builds the experiment
back, in a new ExperimentContext; ``modularml run`` does both and runs the plan.

Everything the file names (classes of models, losses, optimizers, samplers, splitters, scalers,
callbacks) resolves through :func:`modularml.plugins.resolver.resolve` inside one
:func:`~modularml.plugins.resolver.loading` block: a file never runs code of its own, and a user's
own classes need ``allow_packaged_code=True``.

TOML is read with the standard library's ``tomllib`` and written with ``tomli-w``. TOML has no
null: a key whose value is None is left out of a TOML file (every config reader treats a missing
key as None), and a None inside a list cannot be written to TOML (use JSON for such a config).
"""

from __future__ import annotations

import copy
import csv
import json
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modularml.errors import FileCollisionError, InvalidArgumentError, InvalidTypeError, SerializationError

if TYPE_CHECKING:
    from modularml.experiment.experiment import Experiment
    from modularml.phases.callback import Callback
    from modularml.phases.phase_group import PhaseGroup
    from modularml.results.phase_group_results import PhaseGroupResults

__all__ = [
    "FORMAT",
    "VERSION",
    "describe_experiment",
    "experiment_file_config",
    "read_config_file",
    "read_experiment_file",
    "run_experiment",
    "write_experiment_file",
    "write_metrics_csv",
]

#: The ``format`` entry of every experiment config file, and its version.
FORMAT = "modularml-experiment-config"
VERSION = 1
_SUFFIXES = (".toml", ".json")
#: The core's example datasets a config may build a FeatureSet from (``{"dataset": name, ...}``).
_DATASETS = {"synthetic_curves": "make_featureset"}
#: Keys of a phase callback's entry that are not constructor arguments.
_CALLBACK_CLASS = "class"


# ---------------------------------------------------------------------- reading and writing text
def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InvalidArgumentError(
            f"An experiment config file ends in .toml or .json; got {str(path)!r}. Rename it, or pick a format."
        )
    return suffix


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The config in ``path`` (TOML or JSON, by the suffix), checked to be an experiment config.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the suffix is neither ``.toml`` nor ``.json``.
        SerializationError: If the file does not parse, or is not an experiment config of a known version.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"No experiment config file {str(path)!r}.")
    text = path.read_text(encoding="utf-8")
    try:
        config = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"Cannot read {str(path)!r}: it is not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(config, dict):
        raise SerializationError(f"Cannot read {str(path)!r}: an experiment config is a table (an object).")
    if config.get("format") != FORMAT:
        raise SerializationError(
            f"Cannot read {str(path)!r}: it is not a ModularML experiment config (format = {config.get('format')!r}; "
            f"expected {FORMAT!r}). Write one with Experiment.to_file()."
        )
    if config.get("version") != VERSION:
        raise SerializationError(
            f"Cannot read {str(path)!r}: config version {config.get('version')!r}; this modularml reads version "
            f"{VERSION}."
        )
    return config


def _without_none(value: Any, where: str) -> Any:
    """``value`` with every None-valued table entry left out (TOML has no null); a None in a list is refused."""
    if isinstance(value, Mapping):
        return {str(k): _without_none(v, f"{where}.{k}") for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        if any(item is None for item in value):
            raise SerializationError(
                f"{where} is a list holding None, which TOML cannot hold; write this config as .json instead."
            )
        return [_without_none(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _write_text(path: Path, text: str) -> None:
    from modularml.io.atomic import atomic_write

    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def _dump(config: dict[str, Any], suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(config, indent=2) + "\n"
    try:
        import tomli_w
    except ImportError:
        raise ImportError(
            "Writing TOML needs tomli-w, a dependency of modularml; install it with: pip install tomli-w"
        ) from None
    return tomli_w.dumps(_without_none(config, "config"))


# ---------------------------------------------------------------------- experiment -> config
def _callback_entry(callback: Callback) -> dict[str, Any]:
    """A phase callback as a config entry: its registered name (or import path) and its constructor arguments."""
    from modularml.backends.components import import_path
    from modularml.plugins.manager import get_plugin_manager

    name = get_plugin_manager().registry("callbacks").name_of(type(callback)) or import_path(type(callback))
    if name is None:
        raise SerializationError(
            f"Phase callback {callback!r} cannot be named in a config file: define its class at module level "
            "(and register it through register_callbacks, to name it without allow_packaged_code)."
        )
    return {_CALLBACK_CLASS: name, **callback.get_config()}


def _plan_config(group: PhaseGroup) -> dict[str, Any]:
    from modularml.phases.phase_group import GROUP_KIND, PhaseGroup

    items = []
    for item in group.all:
        if isinstance(item, PhaseGroup):
            items.append(_plan_config(item))
        else:
            items.append({**item.get_config(), "callbacks": [_callback_entry(c) for c in item.callbacks]})
    return {"kind": GROUP_KIND, "label": group.label, "items": items}


def experiment_file_config(
    experiment: Experiment, featureset_files: Mapping[str, str], *, seed: int | None = None
) -> dict[str, Any]:
    """The config file's content for ``experiment``, its FeatureSets named by the given relative file names.

    Args:
        experiment: The experiment.
        featureset_files: FeatureSet label -> file name, relative to the config file.
        seed: Seed of the backends, applied before the graph is built; none when None.

    Raises:
        SerializationError: If a callback cannot be named in a config.
        ValueError: If the experiment's context has no ModelGraph.
    """
    base = experiment.get_config()
    graph = experiment.model_graph
    if graph is None:
        raise InvalidArgumentError(
            f"Experiment {experiment.label!r} has no ModelGraph in its context; build one before writing a config file."
        )
    config: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "label": base["label"],
        "registration_policy": base["registration_policy"],
        "featuresets": [{"label": label, "file": name} for label, name in featureset_files.items()],
        "model_graph": graph.get_config(),
        "execution_plan": _plan_config(experiment.execution_plan),
        "callbacks": base["callbacks"],
    }
    if seed is not None:
        config["seed"] = _check_seed(seed)
    return config


def write_experiment_file(
    experiment: Experiment, path: str | Path, *, overwrite: bool = False, seed: int | None = None
) -> Path:
    """Write ``experiment`` as a config file (``.toml`` or ``.json``) and its FeatureSets next to it.

    Each FeatureSet of the experiment's context is saved as ``<label>.fs.mml`` in the config's
    folder (data, splits and fitted scalers) and named in the config by that relative path, so the
    folder can be copied to another machine and run there. Nothing is written when any file
    exists and ``overwrite`` is False. The model graph is written as its config (no weights).

    Args:
        experiment: The experiment.
        path: The config file to write.
        overwrite: Replace existing files. Defaults to False.
        seed: Seed of the backends, written into the file (see :func:`read_experiment_file`).

    Returns:
        Path: The config file written.

    Raises:
        FileCollisionError: If a file exists and ``overwrite`` is False.
        ValueError: For an unknown suffix, or an experiment without a ModelGraph.
        SerializationError: If part of the experiment cannot be named in a config, or a None
            inside a list is written to TOML.
    """
    path = Path(path)
    suffix = _suffix(path)
    folder = path.parent
    featuresets = dict(experiment.ctx.available_featuresets)
    names = {fs.label: f"{fs.label}.fs.mml" for fs in featuresets.values()}
    config = experiment_file_config(experiment, names, seed=seed)
    text = _dump(config, suffix)  # fails before anything is written
    targets = [path, *(folder / name for name in names.values())]
    taken = [str(t) for t in targets if t.exists()]
    if taken and not overwrite:
        raise FileCollisionError(f"{taken} already exist; pass overwrite=True to replace them.")
    folder.mkdir(parents=True, exist_ok=True)
    for fs in featuresets.values():
        fs.save(folder / names[fs.label], overwrite=overwrite)
    _write_text(path, text)
    return path


# ---------------------------------------------------------------------- config -> experiment
def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgumentError(f"seed is an int >= 0; got {seed!r}.")
    return seed


def _entries(config: Mapping[str, Any], key: str) -> list[Any]:
    value = config.get(key) or []
    if not isinstance(value, list):
        raise SerializationError(f"config[{key!r}] is a list; got {type(value).__name__}.")
    return value


def _build_featureset(entry: Any, index: int, folder: Path, ctx: Any) -> None:
    from modularml.data.featureset import FeatureSet

    where = f"config['featuresets'][{index}]"
    if not isinstance(entry, Mapping) or ("file" in entry) == ("dataset" in entry):
        raise SerializationError(f"{where} names a FeatureSet 'file' or a 'dataset' (exactly one); got {entry!r:.200}.")
    if "file" in entry:
        file = Path(entry["file"])
        fs = FeatureSet.load(file if file.is_absolute() else folder / file, overwrite=True)
        if "label" in entry and entry["label"] != fs.label:
            raise SerializationError(
                f"{where}: the file {entry['file']!r} holds FeatureSet {fs.label!r}, not {entry['label']!r}."
            )
        return
    fs = _dataset_featureset(entry, where, ctx)
    for i, split in enumerate(_entries(entry, "splits")):
        _apply_split(fs, split, f"{where}['splits'][{i}]")
    for i, scaler in enumerate(_entries(entry, "scalers")):
        _apply_scaler(fs, scaler, f"{where}['scalers'][{i}]")


def _dataset_featureset(entry: Mapping[str, Any], where: str, ctx: Any) -> Any:
    from modularml import datasets
    from modularml.context import ExperimentContext
    from modularml.data.featureset import FeatureSet

    name = entry["dataset"]
    if name not in _DATASETS:
        raise SerializationError(f"{where} names dataset {name!r}; the datasets are {sorted(_DATASETS)}.")
    args = entry.get("args") or {}
    if not isinstance(args, Mapping):
        raise SerializationError(f"{where}['args'] is a table of the dataset's arguments; got {args!r:.100}.")
    label = entry.get("label", "synthetic")
    with ExperimentContext().activate():  # made aside, then registered under the config's node id
        made = getattr(datasets, _DATASETS[name])(label, **args)
    fs = FeatureSet.from_config({"label": label, "node_id": entry.get("node_id")}, register=False)
    fs.set_state(made.get_state())
    ctx.register_experiment_node(fs)
    return fs


def _apply_split(fs: Any, entry: Any, where: str) -> None:
    from modularml.data.records import splitter_class

    if not isinstance(entry, Mapping) or "splitter" not in entry:
        raise SerializationError(f"{where} is a table with a 'splitter' (a registered name) and its 'config'.")
    splitter = splitter_class(entry["splitter"]).from_config(dict(entry.get("config") or {}))
    applied_to = entry.get("applied_to")
    (fs if applied_to is None else fs.get_split(applied_to)).split(splitter)


def _apply_scaler(fs: Any, entry: Any, where: str) -> None:
    from modularml.scalers import Scaler

    if not isinstance(entry, Mapping) or "scaler" not in entry or "domain" not in entry:
        raise SerializationError(f"{where} is a table with a 'scaler' (a registered name) and a 'domain'.")
    fs.fit_transform(
        Scaler(entry["scaler"], entry.get("scaler_kwargs")),
        domain=entry["domain"],
        keys=entry.get("keys"),
        fit_to_split=entry.get("fit_to_split"),
    )


def _phase_callbacks(item: Any, where: str) -> list[Callback]:
    from modularml.phases.callback import Callback
    from modularml.plugins.resolver import resolve

    callbacks = []
    for i, entry in enumerate(item.pop("callbacks", None) or []):
        entry_where = f"{where}['callbacks'][{i}]"
        if not isinstance(entry, Mapping) or _CALLBACK_CLASS not in entry:
            raise SerializationError(f"{entry_where} is a table with a 'class' entry; got {entry!r:.200}.")
        cls = resolve(
            entry[_CALLBACK_CLASS], what="phase callback class", entry=entry_where, kind="callbacks", base=Callback
        )
        callbacks.append(cls.from_config({k: v for k, v in entry.items() if k != _CALLBACK_CLASS}))
    return callbacks


def _split_plan(config: Any, where: str) -> tuple[dict[str, Any], list[Any]]:
    """The plan's config without phase callbacks, and the callbacks of each item (nested lists for groups)."""
    from modularml.phases.phase_group import GROUP_KIND

    if not isinstance(config, dict) or config.get("kind") != GROUP_KIND:
        raise SerializationError(f"{where} is a phase group config (kind {GROUP_KIND!r}); got {config!r:.200}.")
    items, callbacks = [], []
    for i, item in enumerate(config.get("items") or []):
        item_where = f"{where}['items'][{i}]"
        if isinstance(item, dict) and item.get("kind") == GROUP_KIND:
            inner, inner_callbacks = _split_plan(item, item_where)
            items.append(inner)
            callbacks.append(inner_callbacks)
        else:
            item = dict(item) if isinstance(item, dict) else item
            callbacks.append(_phase_callbacks(item, item_where) if isinstance(item, dict) else [])
            items.append(item)
    return {**config, "items": items}, callbacks


def _attach(group: PhaseGroup, callbacks: list[Any]) -> None:
    from modularml.phases.phase_group import PhaseGroup

    for item, item_callbacks in zip(group.all, callbacks, strict=True):
        if isinstance(item, PhaseGroup):
            _attach(item, item_callbacks)
        else:
            for callback in item_callbacks:
                item.add_callback(callback)


def _seed_backends(graph_config: Mapping[str, Any], seed: int) -> None:
    from modularml.backends import get_backend

    names = {n.get("model", {}).get("backend") for n in graph_config.get("nodes", []) if isinstance(n, Mapping)}
    for name in sorted(n for n in names if isinstance(n, str)):
        get_backend(name).seed(seed)


def read_experiment_file(
    path: str | Path, *, experiment_cls: type[Experiment], allow_packaged_code: bool = False
) -> Experiment:
    """Build the experiment a config file describes, in a new ExperimentContext that becomes the active one.

    In order: the FeatureSets (loaded from their files, or made from a dataset and split and
    scaled as the file says), the backends seeded (when the file has a ``seed``), the model graph,
    the execution plan with each phase's callbacks, and the experiment's own callbacks. A failure
    changes nothing: the new context is dropped and the active one stays active.

    Args:
        path: The config file (``.toml`` or ``.json``).
        experiment_cls: The Experiment class to build (``Experiment.from_file`` passes its own).
        allow_packaged_code: Allow classes from modules outside modularml and the installed
            plugins (your own).

    Returns:
        Experiment: The experiment; its context is active.

    Raises:
        FileNotFoundError: If the file (or a FeatureSet file it names) does not exist.
        SerializationError: If the file is not a valid experiment config or names what may not be used.
    """
    from modularml.context import ExperimentContext
    from modularml.context.context import _ACTIVE_CONTEXT
    from modularml.graph.model_graph import ModelGraph
    from modularml.plugins.resolver import loading

    path = Path(path)
    config = copy.deepcopy(read_config_file(path))
    missing = [k for k in ("label", "model_graph", "execution_plan") if k not in config]
    if missing:
        raise SerializationError(f"Cannot load {str(path)!r}: the config misses {missing}.")
    ctx = ExperimentContext(registration_policy=config.get("registration_policy") or "error")
    with ctx.activate(), loading(path, allow_packaged_code=allow_packaged_code, what="experiment config"):
        for index, entry in enumerate(_entries(config, "featuresets")):
            _build_featureset(entry, index, path.parent, ctx)
        if config.get("seed") is not None:
            _seed_backends(config["model_graph"], _check_seed(config["seed"]))
        ModelGraph.from_config(config["model_graph"], allow_packaged_code=allow_packaged_code)
        plan_config, callbacks = _split_plan(config["execution_plan"], "config['execution_plan']")
        experiment = experiment_cls.from_config(
            {
                "label": config["label"],
                "registration_policy": config.get("registration_policy"),
                "execution_plan": plan_config,
                "callbacks": _entries(config, "callbacks"),
            },
            allow_packaged_code=allow_packaged_code,
        )
        _attach(experiment.execution_plan, callbacks)
    _ACTIVE_CONTEXT.set(ctx)
    return experiment


# ---------------------------------------------------------------------- running
def _phase_results(results: PhaseGroupResults) -> Iterator[tuple[str, Any]]:
    for path, result in results._iter_phase_results(()):
        yield "/".join(path), result


def write_metrics_csv(results: PhaseGroupResults, path: str | Path) -> Path:
    """Every metric of ``results`` as one long CSV: ``phase``, ``fold``, ``epoch``, ``batch``, ``name``, ``value``.

    ``phase`` is the phase's path in the plan (``"inner/val"``), ``fold`` and ``batch`` are empty
    where there is none; values are written exactly (``repr`` of the float). Written atomically.

    Returns:
        Path: The file written.
    """
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("phase", "fold", "epoch", "batch", "name", "value"))
    for phase, result in _phase_results(results):
        for entry in result.metrics().entries():
            batch = "" if entry.batch_idx is None else entry.batch_idx
            writer.writerow((phase, result.fold or "", entry.epoch_idx, batch, entry.name, repr(entry.value)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, buffer.getvalue())
    return path


def describe_experiment(experiment: Experiment) -> str:
    """A text description of what :meth:`Experiment.run` would do: data, graph, and the plan with its callbacks."""
    from modularml.phases.phase_group import PhaseGroup

    lines = [f"experiment {experiment.label!r}"]
    for fs in experiment.ctx.available_featuresets.values():
        splits = ", ".join(f"{name} ({len(fs.get_split(name))})" for name in fs.available_splits) or "no splits"
        lines.append(f"  FeatureSet {fs.label!r}: {fs.n_samples} samples; splits: {splits}")
    graph = experiment.model_graph
    if graph is not None:
        lines.append(f"  ModelGraph {graph.label!r}: {' -> '.join(n.label for n in graph.topological_order)}")

    def walk(group: PhaseGroup, depth: int) -> None:
        pad = "  " * depth
        for item in group.all:
            if isinstance(item, PhaseGroup):
                lines.append(f"{pad}group {item.label!r}")
                walk(item, depth + 1)
                continue
            detail = f", {item.n_epochs} epochs" if hasattr(item, "n_epochs") else ""
            splits = sorted({b.split for b in item.input_sources if b.split is not None})
            lines.append(f"{pad}{type(item).__name__} {item.label!r} on {splits}{detail}")
            for callback in item.callbacks:
                lines.append(f"{pad}  callback {callback!r}")

    lines.append(f"  plan {experiment.execution_plan.label!r}:")
    walk(experiment.execution_plan, 2)
    for callback in experiment.exp_callbacks:
        lines.append(f"  experiment callback {callback!r}")
    return "\n".join(lines)


def run_experiment(
    experiment: Experiment, output: str | Path, *, overwrite: bool = False, **flags: Any
) -> tuple[PhaseGroupResults, list[Path]]:
    """Run the plan of ``experiment`` (built from a config file) and write its results into ``output``.

    Writes ``metrics.csv`` (:func:`write_metrics_csv`) and, where this version of modularml has
    ``Experiment.save``, the experiment file ``<label>.exp.mml``. ``modularml run`` is
    ``Experiment.from_file`` followed by this.

    Args:
        experiment: The experiment.
        output: Folder of the results; created if needed.
        overwrite: Replace result files of an earlier run. Defaults to False.
        **flags: Display flags passed to :meth:`Experiment.run`.

    Returns:
        tuple: The results, and the files written.

    Raises:
        FileCollisionError: If ``metrics.csv`` exists in ``output`` and ``overwrite`` is False
            (checked before anything runs).
    """
    output = Path(output)
    if not isinstance(overwrite, bool):
        raise InvalidTypeError(f"overwrite is a bool; got {overwrite!r}.")
    metrics = output / "metrics.csv"
    if metrics.exists() and not overwrite:
        raise FileCollisionError(f"{str(metrics)!r} already exists; pass overwrite (--overwrite) to replace it.")
    results = experiment.run(**flags)
    written = [write_metrics_csv(results, metrics)]
    if hasattr(experiment, "save"):
        written.append(experiment.save(output / experiment.label, overwrite=overwrite))
    return results, written
