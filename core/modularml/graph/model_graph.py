"""``ModelGraph``: the directed acyclic graph of FeatureSets and graph nodes, and how it trains.

The class is composed here from its concerns: :mod:`~modularml.graph.topology` (nodes, connections,
orders, edits, freezing), :mod:`~modularml.graph.training` (optimizers, building, the forward pass
and the train / eval / fit steps) and :mod:`~modularml.graph.diagram` (the Mermaid diagram). This
module holds its construction, its config and state, and its files and checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from modularml.context import ExperimentContext, RegistrationPolicy
from modularml.errors import GraphTopologyError, InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.graph.diagram import graph_mermaid
from modularml.graph.topology import GraphTopology
from modularml.graph.training import GraphTraining, _StepPlan
from modularml.io import Container
from modularml.nodes.graph_node import GraphNode
from modularml.optimizers import Optimizer
from modularml.utils.display import html_section, html_table, mermaid_html, show_diagram

__all__ = ["FILE_KIND", "ModelGraph"]

#: File kinds: a saved graph ``<name>.mg.mml``; a checkpoint ``<name>.ckpt.mml``.
FILE_KIND = "mg"
CHECKPOINT_KIND = "ckpt"


class ModelGraph(GraphTopology, GraphTraining):
    """Directed acyclic graph orchestrating :class:`GraphNode` nodes.

    Training is stage-wise (each :class:`ModelNode` with its own optimizer steps on its own
    losses, in topological order, with inputs detached at node boundaries) or graph-wise with a
    global optimizer (all losses of the step summed, one gradient scope, one backward, one step;
    one backend only). Inputs cross backends at node boundaries (detached, through numpy).

    Attributes:
        label (str): User-defined identifier for the graph.
    """

    def __init__(
        self,
        nodes: list[str | GraphNode] | None = None,
        optimizer: Optimizer | None = None,
        label: str = "model-graph",
        *,
        ctx: ExperimentContext | None = None,
        register: bool = True,
    ) -> None:
        """Initialize a ModelGraph from nodes (or all GraphNodes of the context) and an optional global optimizer.

        Raises:
            ValueError: If node labels are duplicated or the connectivity is invalid (a cycle, a
                reference to a node outside the graph or to an unregistered FeatureSet).
            RuntimeError: If the global optimizer cannot cover the nodes (mixed backends).
        """
        self._ctx = ctx or ExperimentContext.get_active()
        self.label = label
        if nodes is None:
            found = [n for n in self._ctx.available_nodes.values() if isinstance(n, GraphNode)]
        else:
            if isinstance(nodes, (str, GraphNode)) or not isinstance(nodes, Sequence):
                raise InvalidTypeError(f"nodes is a list of GraphNodes or their labels; got {nodes!r:.100}.")
            found = [self._lookup(n) for n in nodes]
        self._nodes: dict[str, GraphNode] = {}
        labels: set[str] = set()
        for node in found:
            if node.node_id in self._nodes or node.label in labels:
                raise GraphTopologyError(f"Node {node.label!r} is given twice to ModelGraph {label!r}.")
            self._nodes[node.node_id] = node
            labels.add(node.label)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"optimizer is a modularml Optimizer; got {type(optimizer).__name__}.")
        self._optimizer = optimizer
        self._contributing: tuple[str, ...] = ()
        self._built = False
        self._order: list[str] | None = None
        self._plan: _StepPlan | None = None
        self._validate()
        self._check_optimizer_backends()
        if register:
            self._ctx.register_model_graph(self)

    # ------------------------------------------------------------------ display
    def visualize(
        self,
        *,
        show_features: bool = False,
        show_targets: bool = False,
        show_tags: bool | str = False,
        show_frozen: bool = True,
        show_splits: bool = False,
    ) -> str | None:
        """Display a mermaid diagram of this graph in a notebook; return its text elsewhere.

        In a notebook the diagram is displayed and None is returned, so a cell shows it once.

        Args:
            show_features: List the feature columns on FeatureSet nodes.
            show_targets: List the target columns on FeatureSet nodes.
            show_tags: List the tag columns on FeatureSet nodes.
            show_frozen: Mark frozen ModelNodes (label text and a dimmed style).
            show_splits: List the splits of FeatureSet nodes.

        Returns:
            str | None: The mermaid diagram text; None in a notebook, where it is displayed.
        """
        return show_diagram(
            graph_mermaid(
                self,
                show_features=show_features,
                show_targets=show_targets,
                show_tags=show_tags,
                show_frozen=show_frozen,
                show_splits=show_splits,
            )
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the diagram, and a table of the nodes in execution order."""
        rows = []
        for node in self.execution_order(None):
            model = getattr(node, "model", None)
            rows.append(
                (
                    node.label,
                    type(node).__name__,
                    type(model).__name__ if model is not None else "",
                    str(getattr(node, "backend", "") or ""),
                    getattr(node, "input_shape", None) or "",
                    getattr(node, "output_shape", None) or "",
                    "frozen" if getattr(node, "is_frozen", False) else "",
                )
            )
        optimizer = f"global optimizer {self._optimizer!r}" if self._optimizer is not None else "optimizers per node"
        return html_section(
            f"ModelGraph {self.label!r}: {len(rows)} nodes, {optimizer}",
            mermaid_html(graph_mermaid(self)),
            html_table(["node", "kind", "model", "backend", "input shape", "output shape", ""], rows),
        )

    # ------------------------------------------------------------------ config and state
    def place_nodes(self, nodes: Sequence[GraphNode] | None = None, accelerator: Any = None) -> bool:
        """Put the models of ``nodes`` (every node when None) on their devices before a phase runs.

        Each model node's own accelerator wins over ``accelerator`` (the phase's); see
        :meth:`ModelNode.place`. When a model moves, a built global optimizer is rebuilt over the
        moved parameters with its state kept.

        Returns:
            bool: Whether any model moved.

        Raises:
            DeviceError: If a node's device is not available to its backend; nodes placed before
                it stay where they went.
        """
        from modularml.backends.devices import as_accelerator

        accelerator = as_accelerator(accelerator)
        nodes = self.topological_order if nodes is None else list(nodes)
        placeable = [n for n in nodes if callable(getattr(n, "place", None))]
        optimizer = self._optimizer
        state = None
        if optimizer is not None and optimizer.is_built and any(n.needs_move(accelerator) for n in placeable):
            state = optimizer.get_state()
        moved = False
        for node in placeable:
            moved = node.place(accelerator) or moved
        if moved and state is not None:
            self._build_global_optimizer(force=True)
            optimizer.set_state(state)
        return moved

    def get_config(self) -> dict[str, Any]:
        """Configuration of this graph: label, node configs (topological order) and global optimizer."""
        return {
            "label": self.label,
            "nodes": [n.get_config() for n in self.topological_order],
            "optimizer": None if self._optimizer is None else self._optimizer.get_config(),
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, register: bool = True, allow_packaged_code: bool = False
    ) -> ModelGraph:
        """Reconstruct a ModelGraph (and its nodes, registered in the active context) from :meth:`get_config`.

        No learned state is restored (see :meth:`set_state`).
        """
        from modularml.plugins.resolver import loading, resolve

        if not isinstance(config, Mapping) or not isinstance(config.get("nodes"), list):
            raise InvalidArgumentError(
                f"A ModelGraph config is the dict returned by get_config(); got {config!r:.200}."
            )
        with loading(allow_packaged_code=allow_packaged_code, what="graph"):
            classes = []
            for index, node_cfg in enumerate(config["nodes"]):
                if not isinstance(node_cfg, Mapping) or not isinstance(node_cfg.get("node_id"), str):
                    raise SerializationError(
                        f"config['nodes'][{index}] is not a node config with a 'node_id'; got {node_cfg!r:.200}."
                    )
                entry = f"config['nodes'][{index}]['class']"
                classes.append(resolve(node_cfg.get("class"), what="graph node class", entry=entry, base=GraphNode))
            nodes = [
                node_cls.from_config(node_cfg, register=register, allow_packaged_code=allow_packaged_code)
                for node_cls, node_cfg in zip(classes, config["nodes"], strict=True)
            ]
            opt_cfg = config.get("optimizer")
            optimizer = (
                None if opt_cfg is None else Optimizer.from_config(opt_cfg, allow_packaged_code=allow_packaged_code)
            )
            return cls(nodes, optimizer, config.get("label", "model-graph"), register=register)

    def get_state(self) -> dict[str, Any]:
        """Node states (keyed by node_id), global optimizer state and build flag."""
        return {
            "is_built": self._built,
            "nodes": {nid: n.get_state() for nid, n in self._nodes.items()},
            "optimizer": None if self._optimizer is None else self._optimizer.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore node and optimizer state from :meth:`get_state` output.

        All or nothing: if any part fails (a weight of the wrong shape, an optimizer state that
        does not fit), every node and the optimizer are put back as they were and the error is
        raised.

        Raises:
            InvalidArgumentError: If ``state`` is not one :meth:`get_state` produced.
        """
        if (
            not isinstance(state, Mapping)
            or not isinstance(state.get("nodes"), Mapping)
            or not all(isinstance(s, Mapping) for s in state["nodes"].values())
        ):
            raise InvalidArgumentError(f"A ModelGraph state is the dict returned by get_state(); got {state!r:.200}.")
        if state.get("optimizer") is not None and not isinstance(state["optimizer"], Mapping):
            raise InvalidArgumentError(
                f"A ModelGraph state's optimizer state is a dict; got {state['optimizer']!r:.200}."
            )
        before = self.get_state()
        pending = None if self._optimizer is None else self._optimizer._pending_state
        try:
            self._apply_state(state)
        except BaseException:
            self._apply_state(before)
            self._built = bool(before["is_built"])
            if self._optimizer is not None and not self._optimizer.is_built:
                self._optimizer._pending_state = pending
            raise

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        for nid, node_state in state["nodes"].items():
            if nid in self._nodes:
                self._nodes[nid].set_state(node_state)
        if self._optimizer is not None and state.get("optimizer") is not None:
            if self._optimizer.is_built:
                self._optimizer.set_state(state["optimizer"])
            else:
                self._optimizer._pending_state = state["optimizer"].get("backend_state")
        if state.get("is_built") and all(getattr(n, "is_built", True) for n in self._nodes.values()):
            self._build_optimizers()
            self._built = True

    # ------------------------------------------------------------------ files
    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serialize this graph (config and state) to ``<name>.mg.mml``; returns the path written.

        Classes of your own modules that the graph uses (models, losses) are stored with their
        module's source; :meth:`load` runs it only with ``allow_packaged_code=True``.
        """
        from modularml.io import write_container
        from modularml.plugins.packaging import PACKAGED_CODE_KEY, package_code

        config, state = self.get_config(), self.get_state()
        state[PACKAGED_CODE_KEY] = package_code(config, what=f"ModelGraph {self.label!r}")
        return write_container(
            filepath,
            kind=FILE_KIND,
            cls=ModelGraph,
            config=config,
            state=state,
            overwrite=overwrite,
        )

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False, overwrite: bool = False) -> ModelGraph:
        """Load a ModelGraph (nodes, connections, learned state) saved with :meth:`save`.

        The file holds the graph, not the data: the FeatureSets its nodes read must be registered in
        the active context first (``mml.FeatureSet.load(path)``); the error names every missing one.

        Args:
            overwrite: Replace colliding registrations in the active context. If False, nodes whose
                node_id is taken get new ids (labels must still be free under the context's policy).

        Raises:
            SerializationError: If the file is damaged, not a ModelGraph, cannot be rebuilt, or reads
                FeatureSets that are not registered.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND)
        container.require_class(ModelGraph)
        packaged = container.state.get("packaged_code") or {}
        with loading(container.path, allow_packaged_code=allow_packaged_code, what="graph", packaged=packaged):
            return cls.from_saved(
                container.config, container.state, allow_packaged_code=allow_packaged_code, overwrite=overwrite
            )

    @classmethod
    def from_saved(
        cls,
        config: Mapping[str, Any],
        state: Mapping[str, Any],
        *,
        allow_packaged_code: bool = False,
        overwrite: bool = False,
    ) -> ModelGraph:
        """Rebuild a graph from the config and state of a file (:meth:`load`, experiment files), registered.

        Checks the parts before anything is registered, names every FeatureSet the graph reads that
        is not registered, remaps taken node ids unless ``overwrite``; a failure registers nothing.

        Raises:
            SerializationError: If the parts are malformed or the graph reads unregistered FeatureSets.
        """
        ctx = ExperimentContext.get_active()
        snapshot = ctx.get_state()
        try:
            config, state = copy.deepcopy(dict(config)), copy.deepcopy(dict(state))
            _check_graph_file(config, state)
            _check_featuresets_registered(config, ctx)
            if not overwrite:
                taken = {n["node_id"] for n in config["nodes"] if ctx.has_node(node_id=n["node_id"])}
                if taken:
                    mapping = {old: str(uuid.uuid4()) for old in taken}
                    config = _remap_ids(config, mapping)
                    state["nodes"] = {mapping.get(k, k): v for k, v in state["nodes"].items()}
            with _policy(ctx, RegistrationPolicy.OVERWRITE if overwrite else None):
                graph = cls.from_config(config, allow_packaged_code=allow_packaged_code)
            graph.set_state(state)
        except BaseException:
            ctx.set_state(snapshot)  # a failed load registers nothing
            raise
        return graph

    def save_checkpoint(
        self,
        filepath: str | Path,
        *,
        overwrite: bool = False,
        meta: dict[str, Any] | None = None,
        run_state: dict[str, Any] | None = None,
    ) -> Path:
        """Save the full state (weights, optimizer state, freeze flags) to ``<name>.ckpt.mml``.

        Args:
            filepath: Where to save; completed to ``<name>.ckpt.mml``.
            overwrite: Replace an existing file.
            meta: JSON values and numpy arrays to keep with it (nothing is pickled).
            run_state: The position of the run that saved it (a TrainPhase's epoch, batch, RNG
                states, callback states, results so far), stored under ``state["run"]``, from which
                ``Experiment.run_phase(phase, resume_from=...)`` continues; plain data too.
        """
        from modularml.io import write_container

        state = self.get_state()
        if run_state is not None:
            state["run"] = run_state
        return write_container(
            filepath,
            kind=CHECKPOINT_KIND,
            cls=ModelGraph,
            config={"label": self.label, "node_ids": sorted(self._nodes), "meta": dict(meta or {})},
            state=state,
            overwrite=overwrite,
        )

    def restore_checkpoint(self, filepath: str | Path | Container) -> ModelGraph:
        """Restore the state saved by :meth:`save_checkpoint`; returns self.

        Args:
            filepath: The checkpoint file, or its :class:`~modularml.io.Container` when the caller
                has read it already (with :func:`~modularml.io.read_container`).

        Raises:
            SerializationError: If the file is damaged, not a model-graph checkpoint, or the
                checkpoint is of another graph (different node ids).
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        if isinstance(filepath, Container):
            container = filepath
            if container.kind != CHECKPOINT_KIND:
                raise SerializationError(
                    f"Cannot restore {str(container.path)!r}: it holds a {container.kind!r} file, not a checkpoint."
                )
        else:
            container = read_container(filepath, kind=CHECKPOINT_KIND)
        container.require_class(ModelGraph)
        nodes = container.state.get("nodes")
        if not isinstance(nodes, Mapping) or sorted(nodes) != sorted(self._nodes):
            saved = sorted(nodes) if isinstance(nodes, Mapping) else nodes
            raise SerializationError(
                f"Cannot restore {str(container.path)!r}: it holds the state of nodes "
                f"{saved!r:.300}, not of this graph's {sorted(self._nodes)}."
            )
        with loading(container.path, what="checkpoint"):
            self.set_state(container.state)  # all or nothing
        return self

    def __repr__(self) -> str:
        return f"ModelGraph(label={self.label!r}, nodes={[n.label for n in self.topological_order]})"


def _check_graph_file(config: Any, state: Any) -> None:
    """The shape of a graph file's config and state, checked before anything is built or registered."""
    if not isinstance(config, Mapping) or not isinstance(config.get("nodes"), list):
        raise SerializationError("its config holds no list of 'nodes'.")
    for index, node in enumerate(config["nodes"]):
        if not isinstance(node, Mapping) or not isinstance(node.get("node_id"), str):
            raise SerializationError(f"config['nodes'][{index}] is not a node config with a 'node_id'.")
    if not isinstance(state, Mapping) or not isinstance(state.get("nodes"), Mapping):
        raise SerializationError("its state holds no 'nodes' mapping.")
    ids = {node["node_id"] for node in config["nodes"]}
    unknown = sorted(set(state["nodes"]) - ids)
    if unknown:
        raise SerializationError(f"its state holds nodes {unknown} that its config does not define.")


def _check_featuresets_registered(config: Mapping[str, Any], ctx: ExperimentContext) -> None:
    """Refuse, naming all of them, when FeatureSets the graph reads are not registered in ``ctx``.

    A graph file holds the graph, not its data: its FeatureSets are loaded (or built) first.
    """
    needed: dict[str, str | None] = {}
    for node in config["nodes"]:
        for ref in node.get("upstream_refs") or []:
            if isinstance(ref, Mapping) and ref.get("kind") == "featureset" and isinstance(ref.get("node_label"), str):
                needed.setdefault(ref["node_label"], ref.get("node_id"))
    missing = [
        label
        for label, node_id in needed.items()
        if not (isinstance(node_id, str) and ctx.has_node(node_id=node_id)) and not ctx.has_node(label=label)
    ]
    if missing:
        raise SerializationError(
            f"the graph reads the FeatureSets {sorted(missing)}, which are not registered in the active "
            "ExperimentContext. A graph file holds the graph, not its data: load or build them first "
            "(mml.FeatureSet.load(path)), then load the graph."
        )


def _remap_ids(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (mapping.get(v, v) if k == "node_id" and isinstance(v, str) else _remap_ids(v, mapping))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_remap_ids(v, mapping) for v in value]
    return value


@contextlib.contextmanager
def _policy(ctx: ExperimentContext, policy: RegistrationPolicy | None) -> Iterator[None]:
    if policy is None:
        yield
        return
    previous = ctx.registration_policy
    ctx.set_registration_policy(policy)
    try:
        yield
    finally:
        ctx.set_registration_policy(previous)
