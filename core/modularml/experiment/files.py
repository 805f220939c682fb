"""Experiment state as plain data, and experiment files (``<name>.exp.mml``).

:func:`experiment_state` turns an :class:`~modularml.experiment.Experiment` into JSON values,
numpy arrays and Arrow tables only (nothing is pickled), so it is what an experiment file, an
experiment checkpoint and a worker in another process receive:

- ``experiment``: the experiment's config (label, registration policy, execution plan with every
  phase's callbacks, experiment callbacks) and its checkpointing settings;
- ``featuresets``: every FeatureSet of the context, each once (data, splits, scaler records);
- ``model_graph``: the graph's config and state (weights, optimizer state, freeze flags);
- ``history``: every recorded run with its results (see :mod:`modularml.results.serialization`:
  the inputs of recorded steps point into the FeatureSets above, so no data is stored twice).

:func:`restore_experiment` rebuilds all of it into the active context; a failure leaves the
context as it was.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.backends.components import import_path
from modularml.context import ExperimentContext
from modularml.data.featureset import FeatureSet
from modularml.errors import SerializationError
from modularml.experiment.run import ExperimentRun
from modularml.graph.model_graph import ModelGraph
from modularml.phases.base import ExperimentPhase
from modularml.phases.callback import Callback
from modularml.phases.checkpointing import Checkpointing
from modularml.phases.phase_group import PhaseGroup
from modularml.plugins.resolver import resolve
from modularml.results.serialization import results_from_state, results_to_state

if TYPE_CHECKING:
    from modularml.experiment.experiment import Experiment

__all__ = ["EXPERIMENT_KIND", "experiment_state", "restore_experiment"]

logger = logging.getLogger("modularml.experiment")

#: File kind of experiment files (``<name>.exp.mml``).
EXPERIMENT_KIND = "exp"
#: Layout version of :func:`experiment_state`; a newer one is refused.
STATE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# the execution plan, with the phases' callbacks
# ---------------------------------------------------------------------------------------------
def _phases(group: PhaseGroup) -> Iterator[ExperimentPhase]:
    for item in group.all:
        if isinstance(item, PhaseGroup):
            yield from _phases(item)
        else:
            yield item


def callback_config(callback: Callback, where: str) -> dict[str, Any]:
    """``{"class": import path, "config": callback.get_config()}`` of a phase callback.

    Raises:
        SerializationError: If the callback's class has no import path (a class defined in a function).
    """
    path = import_path(type(callback))
    if path is None:
        raise SerializationError(
            f"{where}: the callback {callback!r} cannot be saved: its class {type(callback).__qualname__} is not "
            "defined at module level, so it cannot be found again when loading. Define it in a module."
        )
    return {"class": path, "config": callback.get_config()}


def callback_from_config(entry: Mapping[str, Any], where: str) -> Callback:
    """Rebuild a phase callback from :func:`callback_config` output, its class through the resolver."""
    cls = resolve(entry.get("class"), what="phase callback class", entry=where, kind="callbacks", base=Callback)
    return cls.from_config(dict(entry.get("config") or {}))


def plan_config(plan: PhaseGroup) -> dict[str, Any]:
    """The plan's config (:meth:`PhaseGroup.get_config`) plus each phase's callbacks, by phase position."""
    return {
        "group": plan.get_config(),
        "callbacks": [
            [callback_config(cb, f"phase {phase.label!r}") for cb in phase.callbacks] for phase in _phases(plan)
        ],
    }


def plan_from_config(config: Mapping[str, Any]) -> PhaseGroup:
    """Rebuild a plan (phases bound to the active context's nodes) and attach its phases' callbacks."""
    plan = PhaseGroup.from_config(dict(config["group"]))
    phases = list(_phases(plan))
    callbacks = list(config.get("callbacks") or [])
    if len(callbacks) != len(phases):
        raise SerializationError(
            f"the execution plan has {len(phases)} phases but callbacks are recorded for {len(callbacks)}."
        )
    for phase, entries in zip(phases, callbacks, strict=True):
        for index, entry in enumerate(entries):
            phase.add_callback(callback_from_config(entry, f"callbacks of phase {phase.label!r}[{index}]"))
    return plan


# ---------------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------------
def experiment_state(experiment: Experiment) -> dict[str, Any]:
    """Everything needed to carry the experiment on elsewhere, as plain data (see the module docstring).

    Raises:
        SerializationError: If a part cannot be saved (a callback result that is not plain data, a
            callback class defined inside a function).
    """
    ctx = experiment.ctx
    graph = experiment.model_graph
    graph_ids = set() if graph is None else set(graph.nodes)
    featuresets = ctx.available_featuresets
    others = sorted(
        node.label for nid, node in ctx.available_nodes.items() if nid not in featuresets and nid not in graph_ids
    )
    if others:
        logger.warning(
            "Experiment %r: the registered nodes %s belong neither to the model graph nor are FeatureSets; they are "
            "not saved.",
            experiment.label,
            others,
        )
    checkpointing = experiment.checkpointing
    return {
        "version": STATE_VERSION,
        "experiment": {
            "label": experiment.label,
            "registration_policy": ctx.registration_policy.value,
            "plan": plan_config(experiment.execution_plan),
            "callbacks": [cb.get_config() for cb in experiment._callbacks],
            "checkpointing": None if checkpointing is None else checkpointing.get_config(),
            "checkpoint_dir": None if experiment.checkpoint_dir is None else str(experiment.checkpoint_dir),
        },
        "featuresets": [{"config": fs.get_config(), "state": fs.get_state()} for fs in featuresets.values()],
        "model_graph": None if graph is None else {"config": graph.get_config(), "state": graph.get_state()},
        "history": [
            {
                "label": run.label,
                "kind": run.kind,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "meta": dict(run.meta),
                "results": results_to_state(run.results),
            }
            for run in [*experiment._history, *([experiment._in_progress] if experiment._in_progress else [])]
        ],
    }


def check_state(state: Any) -> None:
    """The outline of an experiment state, checked before anything is rebuilt."""
    if not isinstance(state, Mapping) or not isinstance(state.get("experiment"), Mapping):
        raise SerializationError("it holds no 'experiment' entry: it is not an experiment state.")
    version = state.get("version")
    if not isinstance(version, int) or version > STATE_VERSION:
        raise SerializationError(
            f"its experiment state has layout version {version!r}; this ModularML reads up to {STATE_VERSION}. "
            "Upgrade modularml to read it."
        )
    for key, kind in (("featuresets", list), ("history", list)):
        if not isinstance(state.get(key), kind):
            raise SerializationError(f"its experiment state has no {key!r} list.")
    label = state["experiment"].get("label")
    if not isinstance(label, str) or not label:
        raise SerializationError(f"its experiment label is {label!r}, not a non-empty string.")


def _restore_featuresets(entries: list[Any], ctx: ExperimentContext, overwrite: bool) -> None:
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("config"), Mapping):
            raise SerializationError(f"featuresets[{index}] is not a FeatureSet entry.")
        config = dict(entry["config"])
        saved_id = config.get("node_id")
        existing = ctx.available_nodes.get(saved_id) if isinstance(saved_id, str) else None
        if isinstance(existing, FeatureSet) and existing.label == config.get("label"):
            existing.set_state(entry["state"])  # the same FeatureSet (set_state): its data is the saved one
            continue
        if overwrite:
            for kwargs in ({"node_id": saved_id}, {"label": config.get("label")}):
                if all(isinstance(v, str) for v in kwargs.values()) and ctx.has_node(**kwargs):
                    ctx.remove_node(**kwargs)
        taken = isinstance(saved_id, str) and ctx.has_node(node_id=saved_id)
        fs = FeatureSet.from_config({**config, "node_id": None if taken else saved_id}, register=False)
        fs.set_state(entry["state"])
        ctx.register_experiment_node(fs)


def restore_experiment(
    state: Mapping[str, Any],
    *,
    experiment: Experiment,
    allow_packaged_code: bool = False,
    overwrite: bool = False,
) -> Experiment:
    """Rebuild the state of :func:`experiment_state` into ``experiment`` and its context.

    Its label, plan, callbacks, history and checkpointing are replaced; the saved FeatureSets and
    graph are restored into its context's own (same node ids) or registered anew. Call inside a
    :func:`~modularml.plugins.resolver.loading` block. All or nothing: on any failure the context,
    its FeatureSets and graph, and ``experiment`` are left as they were.

    Raises:
        SerializationError: If the state is malformed or names what cannot be resolved.
    """
    from modularml.callbacks.experiment_callback import ExperimentCallback

    check_state(state)
    ctx = experiment.ctx
    snapshot = ctx.get_state()
    fs_states = {nid: fs.get_state() for nid, fs in ctx.available_featuresets.items()}
    old_graph = ctx.model_graph
    graph_state = None if old_graph is None else copy.deepcopy(old_graph.get_state())
    kept = experiment._snapshot_attributes()
    try:
        with ctx.activate():
            info = state["experiment"]
            _restore_featuresets(list(state["featuresets"]), ctx, overwrite)
            saved_graph = state.get("model_graph")
            if saved_graph is not None:
                graph = ctx.model_graph
                saved_ids = sorted(n["node_id"] for n in saved_graph["config"]["nodes"])
                if graph is not None and sorted(graph.nodes) == saved_ids:
                    graph.set_state(saved_graph["state"])
                else:
                    ModelGraph.from_saved(
                        saved_graph["config"],
                        saved_graph["state"],
                        allow_packaged_code=allow_packaged_code,
                        overwrite=overwrite or graph is not None,
                    )
            plan = plan_from_config(info["plan"])
            callbacks = [
                ExperimentCallback.from_config(dict(c), allow_packaged_code=allow_packaged_code)
                for c in info.get("callbacks") or []
            ]
            checkpointing = (
                None if info.get("checkpointing") is None else Checkpointing.from_config(info["checkpointing"])
            )
            history = [_run_from_state(run, index) for index, run in enumerate(state["history"])]
            experiment.label = info["label"]
            experiment._callbacks = []
            experiment._plan = plan
            for callback in callbacks:
                experiment.add_callback(callback)
            experiment._history = history
            experiment.set_checkpointing(checkpointing)
            if info.get("checkpoint_dir") is not None and experiment.checkpoint_dir is None:
                directory = Path(info["checkpoint_dir"])
                if directory.is_dir():
                    experiment.set_checkpoint_dir(directory, create=False)
    except BaseException:
        ctx.set_state(snapshot)
        for nid, fs_state in fs_states.items():
            fs = snapshot["nodes"].get(nid)
            if isinstance(fs, FeatureSet):
                fs.set_state(fs_state)
        if old_graph is not None and graph_state is not None:
            old_graph.set_state(graph_state)
        experiment._restore_attributes(kept)
        raise
    return experiment


def _run_from_state(run: Any, index: int) -> ExperimentRun:
    if not isinstance(run, Mapping):
        raise SerializationError(f"history[{index}] is not a recorded run.")
    return ExperimentRun(
        label=run["label"],
        results=results_from_state(run["results"]),
        started_at=float(run["started_at"]),
        ended_at=float(run["ended_at"]),
        meta=dict(run.get("meta") or {}),
        kind=run.get("kind", "phase"),
    )


# ---------------------------------------------------------------------------------------------
# checkpoint files carried inside an experiment file
# ---------------------------------------------------------------------------------------------
def pack_checkpoint_files(checkpoints: Mapping[str, Path]) -> dict[str, Any]:
    """The bytes of each checkpoint file (a ``uint8`` array), by name; they stay containers of their own."""
    out = {}
    for name, path in checkpoints.items():
        if path.is_file():
            out[name] = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    return out


def unpack_checkpoint_files(files: Mapping[str, Any], directory: Path) -> dict[str, Path]:
    """Write checkpoint files carried in an experiment file under ``directory`` (atomically, each checked)."""
    from modularml.io import read_container
    from modularml.io.atomic import atomic_write

    written = {}
    root = directory.resolve()
    for name, data in files.items():
        target = (directory / f"{name}.ckpt.mml").resolve()
        if root not in target.parents:
            raise SerializationError(f"the checkpoint name {name!r} points outside the checkpoint directory.")
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as handle:
            handle.write(np.asarray(data, dtype=np.uint8).tobytes())
        try:
            read_container(target, kind="ckpt")
        except SerializationError:
            target.unlink(missing_ok=True)
            raise
        written[name] = target
    return written
