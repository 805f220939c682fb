from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView
from modularml.errors import GraphTopologyError
from modularml.nodes import ExperimentNodeReference
from modularml_numpy.models import LinearModel


def _lin(label: str, upstream, out: int = 2) -> mml.ModelNode:
    return mml.ModelNode(label, LinearModel(output_shape=(out,)), upstream)


def _labels(nodes) -> list[str]:
    return sorted(n.label for n in nodes.values())


def _up(node) -> list[str]:
    return [r.node_label for r in node.upstream_refs]


@pytest.fixture
def chain(regression_fs):
    fs = regression_fs()
    a = _lin("A", fs)
    b = _lin("B", a)
    c = _lin("C", b)
    return fs, a, b, c, mml.ModelGraph([a, b, c])


def test_head_tail_and_topological_order(chain, fresh_context) -> None:
    _, _a, _b, _c, graph = chain
    assert _labels(graph.head_nodes) == ["A"]
    assert _labels(graph.tail_nodes) == ["C"]
    assert [n.label for n in graph.topological_order] == ["A", "B", "C"]
    assert graph.node_labels == {"A", "B", "C"}
    assert fresh_context.model_graph is graph


def test_graph_from_all_context_nodes_and_labels(chain) -> None:
    _, _a, _, _, graph = chain
    other = mml.ModelGraph(["A", "B", "C"], register=False)
    assert set(other.nodes) == set(graph.nodes)
    everything = mml.ModelGraph(None, register=False)
    assert everything.node_labels == {"A", "B", "C"}


def test_remove_single_input_single_output_node(chain) -> None:
    _, _a, b, c, graph = chain
    graph.remove_node("B")
    assert _up(c) == ["A"]
    assert b.node_id not in graph.nodes
    assert [n.label for n in graph.topological_order] == ["A", "C"]


def test_remove_multi_input_node_reroutes_all_inputs(regression_fs) -> None:
    fs = regression_fs()
    a, b = _lin("A", fs), _lin("B", fs)
    c = mml.ConcatNode("C", [a, b])
    d = mml.ConcatNode("D", [c])
    graph = mml.ModelGraph([a, b, c, d])
    graph.remove_node(c)
    assert _up(d) == ["A", "B"]


def test_remove_multi_input_node_into_single_input_node_is_refused_and_graph_unchanged(regression_fs) -> None:
    fs = regression_fs()
    a, b = _lin("A", fs), _lin("B", fs)
    c = mml.ConcatNode("C", [a, b])
    d = _lin("D", c)
    graph = mml.ModelGraph([a, b, c, d])
    with pytest.raises(ValueError, match="at most 1 upstream"):
        graph.remove_node("C")
    assert _up(d) == ["C"]
    assert c.node_id in graph.nodes


def test_remove_single_input_multi_output_node(regression_fs) -> None:
    fs = regression_fs()
    a = _lin("A", fs)
    b = _lin("B", a)
    c, d = _lin("C", b), _lin("D", b)
    graph = mml.ModelGraph([a, b, c, d])
    graph.remove_node("B")
    assert _up(c) == ["A"]
    assert _up(d) == ["A"]
    assert _labels(graph.tail_nodes) == ["C", "D"]


def test_insert_after_before_between(chain) -> None:
    fs, a, b, c, graph = chain
    after = _lin("after_A", fs)
    graph.insert_node_after(after, upstream="A")
    assert _up(after) == ["A"]
    assert _up(b) == ["A"]
    before = _lin("before_A", a)
    graph.insert_node_before(before, downstream=a)
    assert _up(before) == ["data"]
    assert _up(a) == ["before_A"]
    between = _lin("between", fs)
    graph.insert_node_between(between, upstream=b, downstream=c)
    assert _up(between) == ["B"]
    assert _up(c) == ["between"]
    assert [n.label for n in graph.topological_order][:2] == ["before_A", "A"]
    lonely = _lin("lonely", fs)
    with pytest.raises(ValueError, match="not connected"):
        graph.insert_node_between(lonely, upstream=a, downstream=c)
    assert lonely.node_id not in graph.nodes


def test_replace_node_keeps_connections(chain, regression_fs) -> None:
    fs, _a, b, c, graph = chain
    new = _lin("B2", fs, out=2)
    graph.replace_node("B", new)
    assert _up(new) == ["A"]
    assert _up(c) == ["B2"]
    assert b.node_id not in graph.nodes


def test_add_node_and_duplicates(chain) -> None:
    _fs, _a, _b, c, graph = chain
    d = _lin("D", c)
    graph.add_node(d)
    assert _labels(graph.tail_nodes) == ["D"]
    with pytest.raises(ValueError, match="already in the graph"):
        graph.add_node(d)
    with mml.ExperimentContext.dont_register():
        unregistered = _lin("E", c)
    with pytest.raises(ValueError, match="not registered"):
        graph.add_node(unregistered)


def test_cycles_are_refused(regression_fs) -> None:
    fs = regression_fs()
    x = _lin("X", fs)
    b = mml.ModelNode("B", LinearModel(output_shape=(2,)), ExperimentNodeReference("M"))
    m = mml.ConcatNode("M", [x, b])
    with pytest.raises(GraphTopologyError, match=r"cycle among nodes \['B', 'M'\]"):
        mml.ModelGraph([x, b, m])


def test_dangling_references_are_refused(regression_fs) -> None:
    fs = regression_fs()
    a = _lin("A", fs)
    b = _lin("B", a)
    with pytest.raises(ValueError, match="dangling"):
        mml.ModelGraph([b])
    ref = mml.FeatureSetReference("ghost", "no-such-id", features=("features.a.raw",))
    ghost = _lin("G", ref)
    with pytest.raises(ValueError, match="dangling"):
        mml.ModelGraph([a, ghost])


def test_duplicate_nodes_refused(chain) -> None:
    _, a, _, _, _ = chain
    with pytest.raises(ValueError, match="twice"):
        mml.ModelGraph([a, a], register=False)


def test_build_infers_shapes_through_the_graph(regression_fs) -> None:
    fs = regression_fs()
    a, b = _lin("A", fs, out=2), _lin("B", fs, out=3)
    cat = mml.ConcatNode("cat", [a, b])
    head = _lin("head", cat, out=1)
    graph = mml.ModelGraph([a, b, cat, head])
    graph.build()
    assert graph.is_built
    assert a.input_shape == (3,)
    assert cat.output_shape == (5,)
    assert head.input_shape == (5,)


def test_forward_returns_every_executed_node_and_active_nodes_pull_dependencies(regression_fs) -> None:
    fs = regression_fs(n=8)
    a = _lin("A", fs)
    b = _lin("B", a)
    c = _lin("C", a)
    graph = mml.ModelGraph([a, b, c])
    inputs = {(a.node_id, fs.reference()): BatchView(fs, np.arange(8)).materialize_batch("numpy")}
    outputs = graph.forward(inputs)
    assert set(outputs) == {a.node_id, b.node_id, c.node_id}
    partial = graph.forward(inputs, active_nodes=["B"])
    assert set(partial) == {a.node_id, b.node_id}
    np.testing.assert_array_equal(partial[b.node_id].outputs.data, outputs[b.node_id].outputs.data)


def test_freeze_unfreeze_and_frozen_nodes(chain) -> None:
    _, a, b, _c, graph = chain
    graph.freeze(["A", b])
    assert set(graph.frozen_nodes) == {a.node_id, b.node_id}
    graph.unfreeze([a])
    assert set(graph.frozen_nodes) == {b.node_id}
    graph.freeze()
    assert len(graph.frozen_nodes) == 3
    graph.unfreeze()
    assert graph.frozen_nodes == {}


def test_visualize_mermaid_options(chain, fresh_context) -> None:
    fs, _a, _b, _c, graph = chain
    fs.split_random({"train": 0.5, "val": 0.5})
    graph.freeze(["B"])
    text = graph.visualize()
    assert text.startswith("flowchart LR")
    assert "FeatureSet: data" in text
    assert "ModelNode: B (frozen)" in text
    assert "class " in text
    assert "features.a.raw" not in text
    full = graph.visualize(show_features=True, show_targets=True, show_tags=True, show_splits=True)
    for piece in ("features.a.raw", "targets.y.raw", "tags.g.raw", "splits: train, val"):
        assert piece in full
    plain = graph.visualize(show_frozen=False)
    assert "(frozen)" not in plain
    assert plain.count("-->") == 3


def test_unknown_node_lookup(chain) -> None:
    _, _, _, _, graph = chain
    with pytest.raises(KeyError, match="not in ModelGraph"):
        graph.remove_node("nope")


def test_temporary_restores_context_after_an_exception(regression_fs, fresh_context) -> None:
    fs = regression_fs()
    a = _lin("A", fs)
    graph = mml.ModelGraph([a])

    def fold() -> None:
        with fresh_context.temporary():
            fresh_context.set_registration_policy("overwrite")
            b = _lin("B", a)
            mml.ModelGraph([a, b], label="other")
            a.label = "renamed"
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fold()
    assert fresh_context.model_graph is graph
    assert not fresh_context.has_node(label="B")
    assert a.label == "A"
    assert fresh_context.registration_policy == "error"


@pytest.mark.parametrize("policy", ["error", "overwrite", "overwrite_warn", "no_register"])
def test_graph_registration_follows_the_policy(chain, fresh_context, policy) -> None:
    _, a, _, _, graph = chain
    fresh_context.set_registration_policy(policy)
    if policy == "error":
        with pytest.raises(ValueError, match="already has ModelGraph"):
            mml.ModelGraph([a], label="second")
        assert fresh_context.model_graph is graph
        return
    if policy == "overwrite_warn":
        with pytest.warns(mml.errors.RegistrationWarning):
            second = mml.ModelGraph([a], label="second")
    else:
        second = mml.ModelGraph([a], label="second")
    assert fresh_context.model_graph is (graph if policy == "no_register" else second)


def test_failed_edit_leaves_graph_and_new_node_unchanged(chain) -> None:
    fs, a, _, c, graph = chain
    cat = mml.ConcatNode("cat", [fs, a])
    graph.add_node(cat)
    single = _lin("single", c)
    with pytest.raises(ValueError, match="at most 1 upstream"):
        graph.insert_node_before(single, downstream=cat)  # a ModelNode cannot take cat's two inputs
    assert _up(single) == ["C"]
    assert _up(cat) == ["data", "A"]
    assert single.node_id not in graph.nodes


def test_failed_load_registers_nothing(chain, tmp_path, fresh_context) -> None:
    _, _, _, _, graph = chain
    path = graph.save(tmp_path / "g")
    with mml.ExperimentContext(registration_policy="error").activate() as other:
        with pytest.raises(mml.SerializationError, match=r"reads the FeatureSets \['data'\].*FeatureSet\.load"):
            mml.ModelGraph.load(path)  # its FeatureSet is not registered here: the error names it
        assert other.available_nodes == {}
        assert other.model_graph is None
