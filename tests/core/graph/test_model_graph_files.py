from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.errors import SerializationError
from modularml_numpy.models import LinearModel


def _adam() -> mml.Optimizer:
    return mml.Optimizer("adam", opt_kwargs={"lr": 0.01}, backend="numpy")


def _build(fs, *, global_optimizer: bool) -> tuple[mml.ModelGraph, list[mml.AppliedLoss]]:
    node_opt = None if global_optimizer else _adam
    a = mml.ModelNode("a", LinearModel(output_shape=(2,)), fs.reference(features=["a", "b"]), node_opt and node_opt())
    b = mml.ModelNode("b", LinearModel(output_shape=(2,)), fs.reference(features=["c"]), node_opt and node_opt())
    cat = mml.ConcatNode("cat", [a, b], concat_axis_targets="first")
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), cat, node_opt and node_opt())
    graph = mml.ModelGraph([a, b, cat, head], optimizer=_adam() if global_optimizer else None)
    losses = [mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=n, inputs=["outputs", "targets"]) for n in (head,)]
    return graph, losses


def _inputs(graph, fs) -> dict:
    return {
        (node.node_id, node.upstream_refs[0]): BatchView(fs, np.arange(len(fs))).materialize_batch(
            "numpy", columns=node.upstream_refs[0].columns
        )
        for node in graph.head_nodes.values()
    }


def _outputs(graph, fs) -> dict[str, np.ndarray]:
    out = graph.forward(_inputs(graph, fs))
    return {graph.nodes[nid].label: np.asarray(batch.outputs.data) for nid, batch in out.items()}


def _train(graph, fs, losses, steps=5) -> None:
    for _ in range(steps):
        graph.train_step(ExecutionContext("train", inputs=_inputs(graph, fs)), losses)


@pytest.mark.parametrize("global_optimizer", [False, True])
def test_save_and_load_reproduce_outputs_exactly(regression_fs, tmp_path, global_optimizer) -> None:
    fs = regression_fs()
    graph, losses = _build(fs, global_optimizer=global_optimizer)
    graph.build()
    graph.freeze(["b"])
    _train(graph, fs, losses)
    expected = _outputs(graph, fs)
    path = graph.save(tmp_path / "graph")
    assert path.name == "graph.mg.mml"
    with ExperimentContext(registration_policy="error").activate():
        fs2 = regression_fs()
        loaded = mml.ModelGraph.load(path)
        assert loaded.is_built
        assert loaded.node_labels == graph.node_labels
        assert set(loaded.nodes) == set(graph.nodes)
        assert {n.label for n in loaded.frozen_nodes.values()} == {"b"}
        got = _outputs(loaded, fs2)
        for label, value in expected.items():
            np.testing.assert_array_equal(got[label], value)
        # training continues identically from the restored optimizer state
        _train(graph, fs, losses, 3)
        _train(
            loaded,
            fs2,
            [mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on="head", inputs=["outputs", "targets"])],
            3,
        )
        after, after_loaded = _outputs(graph, fs), _outputs(loaded, fs2)
        for label, value in after.items():
            np.testing.assert_allclose(after_loaded[label], value, rtol=1e-6)


def test_load_into_the_same_context_assigns_new_ids_or_overwrites(regression_fs, tmp_path, fresh_context) -> None:
    fs = regression_fs()
    graph, _ = _build(fs, global_optimizer=True)
    graph.build()
    path = graph.save(tmp_path / "g.mg.mml")
    fresh_context.set_registration_policy("overwrite")
    reloaded = mml.ModelGraph.load(path, overwrite=True)
    assert set(reloaded.nodes) == set(graph.nodes)
    assert fresh_context.model_graph is reloaded
    with ExperimentContext(registration_policy="error").activate():
        regression_fs()
        for node in graph.nodes.values():  # a colliding id, with a free label
            mml.ExperimentNode("taken_" + node.label, node_id=node.node_id)
        fresh = mml.ModelGraph.load(path)
        assert not set(fresh.nodes) & set(graph.nodes)
        np.testing.assert_array_equal(_outputs(fresh, fs)["head"], _outputs(graph, fs)["head"])


def test_checkpoint_round_trip(regression_fs, tmp_path) -> None:
    fs = regression_fs()
    graph, losses = _build(fs, global_optimizer=True)
    graph.build()
    _train(graph, fs, losses)
    at_checkpoint = _outputs(graph, fs)
    path = graph.save_checkpoint(tmp_path / "step5", meta={"epoch": 5})
    assert path.name == "step5.ckpt.mml"
    _train(graph, fs, losses, 3)
    next_steps = _outputs(graph, fs)
    assert not np.array_equal(next_steps["head"], at_checkpoint["head"])
    assert graph.restore_checkpoint(path) is graph
    for label, value in _outputs(graph, fs).items():
        np.testing.assert_array_equal(value, at_checkpoint[label])
    _train(graph, fs, losses, 3)
    for label, value in _outputs(graph, fs).items():
        np.testing.assert_allclose(value, next_steps[label], rtol=1e-6)


def test_checkpoint_of_another_graph_is_refused(regression_fs, tmp_path) -> None:
    fs = regression_fs()
    graph, _ = _build(fs, global_optimizer=True)
    graph.build()
    path = graph.save_checkpoint(tmp_path / "c")
    other = mml.ModelGraph([mml.ModelNode("solo", LinearModel(output_shape=(1,)), fs)], register=False)
    with pytest.raises(SerializationError, match="not of this graph"):
        other.restore_checkpoint(path)
    with pytest.raises(SerializationError):
        mml.ModelGraph.load(path)


def test_config_round_trip(regression_fs) -> None:
    fs = regression_fs()
    graph, _ = _build(fs, global_optimizer=True)
    config = graph.get_config()
    with ExperimentContext(registration_policy="error").activate():
        regression_fs()
        clone = mml.ModelGraph.from_config(config)
        assert clone.get_config() == config
        assert not clone.is_built


def test_restore_checkpoint_takes_a_container_already_read(regression_fs, tmp_path) -> None:
    from modularml.io import read_container

    fs = regression_fs()
    graph, losses = _build(fs, global_optimizer=True)
    graph.build()
    path = graph.save_checkpoint(tmp_path / "c")
    saved = _outputs(graph, fs)
    _train(graph, fs, losses, 2)
    assert graph.restore_checkpoint(read_container(path)) is graph
    for label, value in _outputs(graph, fs).items():
        np.testing.assert_array_equal(value, saved[label])
    with pytest.raises(SerializationError, match=r"holds a 'mg' file, not a checkpoint"):
        graph.restore_checkpoint(read_container(graph.save(tmp_path / "g")))
