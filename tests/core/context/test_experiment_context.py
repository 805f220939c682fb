from __future__ import annotations

import contextvars
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from modularml.context import ExperimentContext, ExperimentNode, RegistrationPolicy
from modularml.errors import (
    InvalidArgumentError,
    NodeCollisionError,
    NodeNotFoundError,
    NodeTypeError,
    RegistrationWarning,
)


class FeatureSet(ExperimentNode):
    """Stands in for modularml's FeatureSet: the context recognises it by class name."""


class ComputeNode(ExperimentNode):
    pass


class ModelNode(ComputeNode):
    pass


class EmptyNode(ExperimentNode):
    """A node that is falsy, as a FeatureSet with no rows would be."""

    def __len__(self) -> int:
        return 0


class ModelGraph:
    def __init__(self, label: str = "model-graph") -> None:
        self.label = label


class Experiment:
    pass


def _default_context() -> ExperimentContext:
    """The process's default context, as seen where nothing has been activated."""
    return contextvars.Context().run(ExperimentContext.get_active)


# ---------------------------------------------------------------------- construction, policy, experiment


def test_init_defaults() -> None:
    context = ExperimentContext()
    assert context.available_nodes == {}
    assert context.model_graph is None
    assert context.get_experiment() is None
    assert context.registration_policy is RegistrationPolicy.default()


def test_init_with_experiment_and_policy() -> None:
    experiment = Experiment()
    context = ExperimentContext(experiment=experiment, registration_policy="Overwrite")
    assert context.get_experiment() is experiment
    assert context.registration_policy is RegistrationPolicy.OVERWRITE


def test_init_rejects_unknown_policy_and_non_experiment() -> None:
    with pytest.raises(ValueError, match="Unknown registration policy"):
        ExperimentContext(registration_policy="sometimes")
    with pytest.raises(TypeError, match="Expected an Experiment"):
        ExperimentContext(experiment=object())


def test_set_registration_policy(ctx: ExperimentContext) -> None:
    ctx.set_registration_policy("NO_REGISTER")
    assert ctx.registration_policy is RegistrationPolicy.NO_REGISTER
    ctx.set_registration_policy(RegistrationPolicy.OVERWRITE_WARN)
    assert ctx.registration_policy is RegistrationPolicy.OVERWRITE_WARN
    with pytest.raises(ValueError, match="'nope'"):
        ctx.set_registration_policy("nope")
    assert ctx.registration_policy is RegistrationPolicy.OVERWRITE_WARN


def test_set_experiment_keeps_or_resets_registries(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    graph = ModelGraph()
    ctx.register_model_graph(graph)
    first, second = Experiment(), Experiment()
    ctx.set_experiment(first)
    assert ctx.get_experiment() is first
    assert ctx.available_nodes == {node.node_id: node}
    ctx.set_experiment(second, reset_registries=True)
    assert ctx.get_experiment() is second
    assert ctx.available_nodes == {}
    assert ctx.model_graph is None


def test_set_experiment_rejects_other_objects(ctx: ExperimentContext) -> None:
    with pytest.raises(TypeError, match="Expected an Experiment; got str"):
        ctx.set_experiment("my-experiment")


def test_repr() -> None:
    assert repr(ExperimentContext(registration_policy="overwrite")) == (
        "ExperimentContext(nodes=0, registration_policy='overwrite', experiment=None)"
    )


# ---------------------------------------------------------------------- activation


def test_get_active_returns_the_activated_context(ctx: ExperimentContext) -> None:
    assert ExperimentContext.get_active() is ctx


def test_a_default_context_always_exists() -> None:
    default = _default_context()
    assert isinstance(default, ExperimentContext)
    assert _default_context() is default


def test_activate_nests_and_restores(ctx: ExperimentContext) -> None:
    outer, inner = ExperimentContext(), ExperimentContext()
    with outer.activate() as entered:
        assert entered is outer
        assert ExperimentContext.get_active() is outer
        with inner.activate():
            assert ExperimentContext.get_active() is inner
        assert ExperimentContext.get_active() is outer
    assert ExperimentContext.get_active() is ctx


def test_activate_restores_after_an_exception(ctx: ExperimentContext) -> None:
    other = ExperimentContext()
    with pytest.raises(RuntimeError, match="boom"), other.activate():
        raise RuntimeError("boom")
    assert ExperimentContext.get_active() is ctx


def test_a_new_thread_sees_the_default_context_not_the_activated_one(ctx: ExperimentContext) -> None:
    seen: list[ExperimentContext] = []
    thread = threading.Thread(target=lambda: seen.append(ExperimentContext.get_active()))
    thread.start()
    thread.join()
    assert seen == [_default_context()]
    assert seen[0] is not ctx
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(ExperimentContext.get_active).result() is _default_context()
        # Carrying the caller's contextvars over is how work runs under the caller's context.
        carried = pool.submit(contextvars.copy_context().run, ExperimentContext.get_active).result()
        assert carried is ctx


def test_activation_in_a_thread_does_not_leak_to_other_threads(ctx: ExperimentContext) -> None:
    in_thread = ExperimentContext()
    activated = threading.Event()
    release = threading.Event()
    seen: list[ExperimentContext] = []

    def work() -> None:
        with in_thread.activate():
            seen.append(ExperimentContext.get_active())
            activated.set()
            release.wait(timeout=5)

    thread = threading.Thread(target=work)
    thread.start()
    assert activated.wait(timeout=5)
    assert ExperimentContext.get_active() is ctx
    release.set()
    thread.join()
    assert seen == [in_thread]


# ---------------------------------------------------------------------- registration and policies


def test_register_experiment_node(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha", register=False)
    ctx.register_experiment_node(node)
    assert ctx.available_nodes == {node.node_id: node}
    ctx.register_experiment_node(node)  # registering the same node again changes nothing
    assert ctx.available_nodes == {node.node_id: node}


def test_register_rejects_non_nodes(ctx: ExperimentContext) -> None:
    with pytest.raises(TypeError, match="Only an ExperimentNode can be registered; got str") as info:
        ctx.register_experiment_node("alpha")  # type: ignore[arg-type]
    assert isinstance(info.value, NodeTypeError)


def test_label_collision_under_error_policy(ctx: ExperimentContext) -> None:
    first = ExperimentNode("alpha")
    with pytest.raises(ValueError, match="'alpha' is already used") as info:
        ExperimentNode("alpha")
    assert isinstance(info.value, NodeCollisionError)
    message = str(info.value)
    assert first.node_id in message
    assert "remove_node(label='alpha')" in message
    assert "set_registration_policy('overwrite')" in message
    assert ctx.available_nodes == {first.node_id: first}


def test_label_collision_under_overwrite_policy(ctx: ExperimentContext) -> None:
    ctx.set_registration_policy("overwrite")
    ExperimentNode("alpha")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = ExperimentNode("alpha")
    assert ctx.available_nodes == {second.node_id: second}


def test_label_collision_under_overwrite_warn_policy(ctx: ExperimentContext) -> None:
    ctx.set_registration_policy("overwrite_warn")
    first = ExperimentNode("alpha")
    with pytest.warns(RegistrationWarning, match="'alpha'") as record:
        second = ExperimentNode("alpha")
    assert ctx.available_nodes == {second.node_id: second}
    assert first.node_id in str(record[0].message)
    assert record[0].filename == __file__  # attributed to the user's line, not modularml's


def test_label_collision_under_no_register_policy(ctx: ExperimentContext) -> None:
    first = ExperimentNode("alpha")
    ctx.set_registration_policy("no_register")
    second = ExperimentNode("alpha")
    ctx.register_experiment_node(ExperimentNode("beta", register=False))
    assert ctx.available_nodes == {first.node_id: first}
    assert second.label == "alpha"


def test_label_collision_check_can_be_skipped(ctx: ExperimentContext) -> None:
    first = ExperimentNode("alpha")
    second = ExperimentNode("alpha", register=False)
    ctx.register_experiment_node(second, check_label_collision=False)
    assert ctx.available_nodes == {first.node_id: first, second.node_id: second}
    assert ctx.has_node(label="alpha")
    with pytest.raises(ValueError, match="shared by several registered nodes"):
        ctx.get_node(label="alpha")
    with pytest.raises(ValueError, match="look the node up by node_id"):
        ctx.remove_node(label="alpha")
    assert ctx.get_node(node_id=second.node_id) is second


def test_node_id_collision_follows_the_policy(ctx: ExperimentContext) -> None:
    first = ExperimentNode("alpha", node_id="shared-id")
    with pytest.raises(ValueError, match="node_id 'shared-id' is already used"):
        ExperimentNode("beta", node_id="shared-id")
    ctx.set_registration_policy("overwrite")
    second = ExperimentNode("beta", node_id="shared-id")
    assert ctx.available_nodes == {"shared-id": second}
    assert not ctx.is_registered(first)


def test_overwrite_replaces_both_id_and_label_collisions(ctx: ExperimentContext) -> None:
    ExperimentNode("alpha", node_id="id-a")
    ExperimentNode("beta", node_id="id-b")
    ctx.set_registration_policy("overwrite_warn")
    with pytest.warns(RegistrationWarning, match="'alpha'.*'beta'"):
        newcomer = ExperimentNode("beta", node_id="id-a")
    assert ctx.available_nodes == {"id-a": newcomer}


def test_available_featuresets_and_computenodes_filter_by_class(ctx: ExperimentContext) -> None:
    plain = ExperimentNode("plain")
    fs = FeatureSet("fs")
    compute = ComputeNode("compute")
    model = ModelNode("model")
    assert ctx.available_nodes == {n.node_id: n for n in (plain, fs, compute, model)}
    assert ctx.available_featuresets == {fs.node_id: fs}
    assert ctx.available_computenodes == {compute.node_id: compute, model.node_id: model}


def test_available_views_are_copies(ctx: ExperimentContext) -> None:
    ExperimentNode("alpha")
    FeatureSet("fs")
    ctx.available_nodes.clear()
    ctx.available_featuresets.clear()
    assert len(ctx.available_nodes) == 2
    assert len(ctx.available_featuresets) == 1


# ---------------------------------------------------------------------- dont_register


def test_dont_register_on_the_class_applies_to_the_active_context(ctx: ExperimentContext) -> None:
    with ExperimentContext.dont_register() as scoped:
        assert scoped is ctx
        assert ctx.registration_policy is RegistrationPolicy.NO_REGISTER
        node = ExperimentNode("alpha")
    assert ctx.available_nodes == {}
    assert ctx.registration_policy is RegistrationPolicy.ERROR
    ctx.register_experiment_node(node)
    assert ctx.has_node(label="alpha")


def test_dont_register_on_an_instance_applies_to_that_instance(ctx: ExperimentContext) -> None:
    other = ExperimentContext(registration_policy="overwrite")
    with other.dont_register() as scoped:
        assert scoped is other
        assert other.registration_policy is RegistrationPolicy.NO_REGISTER
        node = ExperimentNode("alpha")  # the active context still registers
    assert ctx.available_nodes == {node.node_id: node}
    assert other.registration_policy is RegistrationPolicy.OVERWRITE


def test_dont_register_restores_the_policy_after_an_exception(ctx: ExperimentContext) -> None:
    with pytest.raises(RuntimeError, match="boom"), ExperimentContext.dont_register():
        raise RuntimeError("boom")
    assert ctx.registration_policy is RegistrationPolicy.ERROR


# ---------------------------------------------------------------------- model graph


def test_register_model_graph(ctx: ExperimentContext) -> None:
    graph = ModelGraph()
    ctx.register_model_graph(graph)
    assert ctx.model_graph is graph
    ctx.register_model_graph(graph)  # the same graph again is fine under any policy
    assert ctx.model_graph is graph


def test_register_model_graph_accepts_subclasses_and_rejects_others(ctx: ExperimentContext) -> None:
    class MyGraph(ModelGraph):
        pass

    ctx.register_model_graph(MyGraph())
    with pytest.raises(TypeError, match="Expected a ModelGraph; got ExperimentNode"):
        ctx.register_model_graph(ExperimentNode("alpha", register=False))


@pytest.mark.parametrize("policy", ["error", "overwrite", "overwrite_warn", "no_register"])
def test_second_model_graph_follows_the_policy(ctx: ExperimentContext, policy: str) -> None:
    first, second = ModelGraph("first"), ModelGraph("second")
    ctx.register_model_graph(first)
    ctx.set_registration_policy(policy)
    if policy == "error":
        with pytest.raises(ValueError, match="already has ModelGraph 'first'"):
            ctx.register_model_graph(second)
        expected = first
    elif policy == "overwrite_warn":
        with pytest.warns(RegistrationWarning, match="'first' was replaced by 'second'"):
            ctx.register_model_graph(second)
        expected = second
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ctx.register_model_graph(second)
        expected = second if policy == "overwrite" else first
    assert ctx.model_graph is expected


# ---------------------------------------------------------------------- lookup


def test_get_node_by_id_label_and_val(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    assert ctx.get_node(node_id=node.node_id) is node
    assert ctx.get_node(label="alpha") is node
    assert ctx.get_node(node.node_id) is node
    assert ctx.get_node("alpha") is node


def test_get_node_val_checks_ids_before_labels(ctx: ExperimentContext) -> None:
    by_id = ExperimentNode("first", node_id="same")
    ExperimentNode("same")  # its label is the other node's id
    assert ctx.get_node("same") is by_id
    assert ctx.get_node(label="same") is not by_id


def test_get_node_finds_falsy_nodes(ctx: ExperimentContext) -> None:
    node = EmptyNode("empty")
    assert ctx.get_node("empty") is node


def test_get_node_missing_raises_key_error(ctx: ExperimentContext) -> None:
    ExperimentNode("alpha")
    with pytest.raises(KeyError, match=r"label 'nope'.*Registered labels: \['alpha'\]") as info:
        ctx.get_node(label="nope")
    assert isinstance(info.value, NodeNotFoundError)
    with pytest.raises(KeyError, match="node_id 'nope'"):
        ctx.get_node(node_id="nope")
    with pytest.raises(KeyError, match="id or label 'nope'"):
        ctx.get_node("nope")


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"val": "a", "label": "a"}, {"node_id": "a", "label": "a"}, {"val": "a", "node_id": "a"}],
)
def test_get_node_needs_exactly_one_selector(ctx: ExperimentContext, kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one of val / node_id / label") as info:
        ctx.get_node(**kwargs)
    assert isinstance(info.value, InvalidArgumentError)


def test_get_node_enforces_type(ctx: ExperimentContext) -> None:
    model = ModelNode("model")
    assert ctx.get_node("model", enforce_type="ComputeNode") is model
    assert ctx.get_node("model", enforce_type=ComputeNode) is model
    assert ctx.get_node("model", enforce_type=f"{__name__}.ModelNode") is model
    assert ctx.get_node("model", enforce_type=None) is model
    with pytest.raises(TypeError, match=r"'model'.*is a ModelNode, not a FeatureSet") as info:
        ctx.get_node("model", enforce_type="FeatureSet")
    assert isinstance(info.value, NodeTypeError)
    with pytest.raises(TypeError, match="not a FeatureSet"):
        ctx.get_node(label="model", enforce_type=FeatureSet)


def test_has_node(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    assert ctx.has_node(node_id=node.node_id)
    assert ctx.has_node(label="alpha")
    assert not ctx.has_node(node_id="missing")
    assert not ctx.has_node(label="missing")
    with pytest.raises(ValueError, match="exactly one"):
        ctx.has_node()
    with pytest.raises(ValueError, match="exactly one"):
        ctx.has_node(node_id=node.node_id, label="alpha")


# ---------------------------------------------------------------------- labels and removal


def test_update_node_label(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    ctx.update_node_label(node.node_id, "gamma")
    assert node.label == "gamma"
    assert ctx.get_node(label="gamma") is node
    assert not ctx.has_node(label="alpha")


def test_update_node_label_collision(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    other = ExperimentNode("beta")
    with pytest.raises(ValueError, match="label is already used by ExperimentNode") as info:
        ctx.update_node_label(node.node_id, "beta")
    assert isinstance(info.value, NodeCollisionError)
    assert other.node_id in str(info.value)
    assert node.label == "alpha"
    ctx.update_node_label(node.node_id, "alpha")  # its own label is no collision
    ctx.update_node_label(node.node_id, "beta", check_label_collision=False)
    assert node.label == "beta"


def test_update_node_label_errors(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    with pytest.raises(KeyError, match="node_id 'missing'"):
        ctx.update_node_label("missing", "beta")
    with pytest.raises(ValueError, match="may not contain"):
        ctx.update_node_label(node.node_id, "a b")
    assert node.label == "alpha"


def test_remove_node(ctx: ExperimentContext) -> None:
    alpha = ExperimentNode("alpha")
    beta = ExperimentNode("beta")
    assert ctx.remove_node(node_id=alpha.node_id) is alpha
    assert ctx.remove_node(label="beta") is beta
    assert ctx.available_nodes == {}
    ExperimentNode("alpha")  # the label is free again


def test_remove_node_errors(ctx: ExperimentContext) -> None:
    with pytest.raises(KeyError, match=r"label 'missing'.*error_if_missing=False") as info:
        ctx.remove_node(label="missing")
    assert isinstance(info.value, NodeNotFoundError)
    with pytest.raises(KeyError, match="node_id 'missing'"):
        ctx.remove_node(node_id="missing")
    assert ctx.remove_node(label="missing", error_if_missing=False) is None
    with pytest.raises(ValueError, match="exactly one of node_id / label; none was given"):
        ctx.remove_node()
    with pytest.raises(ValueError, match="node_id, label were given"):
        ctx.remove_node(node_id="a", label="a")


# ---------------------------------------------------------------------- snapshots and temporary scopes


def _populate(ctx: ExperimentContext) -> tuple[ExperimentNode, ExperimentNode, ModelGraph, Experiment]:
    alpha, beta = ExperimentNode("alpha"), ExperimentNode("beta")
    graph, experiment = ModelGraph(), Experiment()
    ctx.register_model_graph(graph)
    ctx.set_experiment(experiment)
    return alpha, beta, graph, experiment


def _mutate_everything(ctx: ExperimentContext, alpha: ExperimentNode, beta: ExperimentNode) -> None:
    ctx.set_registration_policy("overwrite")
    ExperimentNode("gamma")
    ExperimentNode("beta")  # replaces beta
    ctx.remove_node(node_id=alpha.node_id)
    alpha.label = "renamed"  # unregistered now: a plain rename
    ctx.register_model_graph(ModelGraph("other"))
    ctx.set_experiment(Experiment())


def test_get_state_and_set_state_round_trip(ctx: ExperimentContext) -> None:
    alpha, beta, graph, experiment = _populate(ctx)
    state = ctx.get_state()
    assert set(state) == {"nodes", "labels", "model_graph", "registration_policy", "experiment"}
    _mutate_everything(ctx, alpha, beta)
    assert state["nodes"] == {alpha.node_id: alpha, beta.node_id: beta}  # a snapshot, not a live view
    ctx.set_state(state)
    assert ctx.available_nodes == {alpha.node_id: alpha, beta.node_id: beta}
    assert alpha.label == "alpha"
    assert ctx.model_graph is graph
    assert ctx.get_experiment() is experiment
    assert ctx.registration_policy is RegistrationPolicy.ERROR


def test_set_state_errors(ctx: ExperimentContext) -> None:
    with pytest.raises(TypeError, match="dict returned by get_state"):
        ctx.set_state([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lacks"):
        ctx.set_state({"nodes": {}})
    state = ctx.get_state()
    state["nodes"] = {"x": object()}
    with pytest.raises(TypeError, match="under node 'x'"):
        ctx.set_state(state)
    state["nodes"] = {}
    state["registration_policy"] = "sometimes"
    with pytest.raises(ValueError, match="Unknown registration policy"):
        ctx.set_state(state)


def test_temporary_restores_everything_on_normal_exit(ctx: ExperimentContext) -> None:
    alpha, beta, graph, experiment = _populate(ctx)
    before = ctx.available_nodes
    with ctx.temporary() as scoped:
        assert scoped is ctx
        _mutate_everything(ctx, alpha, beta)
        assert ctx.has_node(label="gamma")
    assert ctx.available_nodes == before
    assert (alpha.label, beta.label) == ("alpha", "beta")
    assert ctx.model_graph is graph
    assert ctx.get_experiment() is experiment
    assert ctx.registration_policy is RegistrationPolicy.ERROR


def test_temporary_restores_everything_after_an_exception(ctx: ExperimentContext) -> None:
    alpha, beta, graph, experiment = _populate(ctx)
    before_nodes = ctx.available_nodes
    before_policy = ctx.registration_policy

    def run_fold() -> None:
        with ctx.temporary():
            _mutate_everything(ctx, alpha, beta)
            ctx.update_node_label(ctx.get_node(label="gamma").node_id, "delta")
            raise RuntimeError("fold failed")

    with pytest.raises(RuntimeError, match="fold failed"):
        run_fold()
    assert ctx.available_nodes == before_nodes
    assert ctx.registration_policy == before_policy
    assert {n.label for n in ctx.available_nodes.values()} == {"alpha", "beta"}
    assert ctx.model_graph is graph
    assert ctx.get_experiment() is experiment
    assert ExperimentContext.get_active() is ctx


def test_temporary_activates_the_context_for_its_scope(ctx: ExperimentContext) -> None:
    other = ExperimentContext(registration_policy="error")
    with other.temporary():
        assert ExperimentContext.get_active() is other
        node = ExperimentNode("alpha")
        assert other.has_node(node_id=node.node_id)
    assert ExperimentContext.get_active() is ctx
    assert other.available_nodes == {}
    assert ctx.available_nodes == {}


def test_temporary_scopes_nest(ctx: ExperimentContext) -> None:
    ExperimentNode("alpha")
    with ctx.temporary():
        ExperimentNode("beta")
        with ctx.temporary():
            ExperimentNode("gamma")
            assert len(ctx.available_nodes) == 3
        assert {n.label for n in ctx.available_nodes.values()} == {"alpha", "beta"}
    assert {n.label for n in ctx.available_nodes.values()} == {"alpha"}
