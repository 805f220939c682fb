"""Results as plain data: results_to_state / results_from_state round trips, packed and compact."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.callbacks import EarlyStopping, Evaluation
from modularml.errors import SerializationError
from modularml.io import read_container, write_container
from modularml.results.serialization import results_from_state, results_to_state

pytest.importorskip("modularml_numpy", reason="phases train with the numpy backend plugin")

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


@pytest.fixture(autouse=True)
def _own_context(fresh_context):
    return fresh_context


def _train(s, n_epochs=3, **kwargs) -> mml.TrainResults:
    sampler = mml.SimpleSampler(batch_size=8, shuffle=True, seed=0, show_progress=False)
    phase = mml.TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs, **kwargs
    )
    val = mml.EvalPhase.from_split("val", split="val", losses=[s.loss])
    phase.add_callback(Evaluation(val))
    phase.add_callback(EarlyStopping(monitor="val_loss", patience=10))
    return phase.execute(**QUIET)


def _through_file(state, tmp_path):
    path = write_container(
        tmp_path / "r", kind="ckpt", cls="modularml.results.phase_results:PhaseResults", config={}, state={"r": state}
    )
    return read_container(path).state["r"]


def test_train_results_round_trip_through_a_file(linear_setup, tmp_path) -> None:
    s = linear_setup()
    results = _train(s)
    back = results_from_state(_through_file(results_to_state(results), tmp_path))
    assert type(back) is mml.TrainResults
    assert back.label == "train"
    assert [(e.name, e.value, e.epoch_idx, e.batch_idx) for e in back.metrics()] == [
        (e.name, e.value, e.epoch_idx, e.batch_idx) for e in results.metrics()
    ]
    assert back.epoch_losses() == results.epoch_losses()
    assert back.n_epochs == results.n_epochs == 3
    assert len(back.execution_contexts()) == len(results.execution_contexts()) > 3
    for got, want in zip(back.execution_contexts(), results.execution_contexts(), strict=True):
        assert (got.epoch_idx, got.batch_idx) == (want.epoch_idx, want.batch_idx)
        for node_id, batch in want.outputs.items():
            np.testing.assert_array_equal(
                got.outputs[node_id].get_role("default").outputs, np.asarray(batch.get_role("default").outputs)
            )
        for label, loss in want.losses.items():
            np.testing.assert_array_equal(got.losses[label], np.asarray(loss))
        # inputs come back as views into the FeatureSet: the same rows, gathered again
        for key, value in want.inputs.items():
            restored = got.inputs[key]
            assert isinstance(restored, BatchView)
            original = value if isinstance(value, mml.Batch) else value.materialize_batch("numpy")
            again = restored.materialize_batch("numpy")
            np.testing.assert_array_equal(
                again.get_role("default").features, np.asarray(original.get_role("default").features)
            )
    np.testing.assert_array_equal(
        back.stacked_tensors(s.head, domain="outputs"), results.stacked_tensors(s.head, domain="outputs")
    )
    assert [r.kind for r in back.callbacks()] == [r.kind for r in results.callbacks()]
    assert back.validation_losses(s.head).values == results.validation_losses(s.head).values


def test_contexts_pack_into_a_few_arrays(linear_setup, tmp_path) -> None:
    s = linear_setup(n=256)
    results = _train(s, n_epochs=4)
    state = results_to_state(results)
    n_steps = len(results.execution_contexts())
    assert n_steps >= 4 * 24
    # one array per place (outputs, targets, weights, ... of the head; the loss; input rows), not per step
    assert len(state["contexts"]["slots"]) < 20
    assert all(len(slot["owners"]) == n_steps for slot in state["contexts"]["slots"])


def test_group_results_and_unsavable_callback_values(linear_setup) -> None:
    s = linear_setup()
    group = mml.PhaseGroupResults("g")
    group.add_result(_train(s, n_epochs=1))
    back = results_from_state(results_to_state(group))
    assert isinstance(back, mml.PhaseGroupResults)
    assert back.labels == ["train"]
    bad = mml.TrainResults("t")
    bad.add_callback_result(mml.CallbackResult("custom", "mine", 0, None, object()))
    with pytest.raises(SerializationError, match=r"callback result 0 .*custom 'mine'.* phase 't'"):
        results_to_state(bad)
    with pytest.raises(SerializationError, match="layout version 99"):
        results_from_state({"type": "phase", "version": 99})


def test_mixed_object_tags_are_saved_column_by_column(tmp_path) -> None:
    tags = np.array([["a", 1.5], ["b", 2.5]], dtype=object)
    batch = mml.Batch(2, {"default": mml.SampleData(outputs=np.ones((2, 1), "float32"), tags=tags)})
    results = mml.EvalResults("e")
    ctx = ExecutionContext("e")
    ctx.set_output("node", batch)
    results.add_execution_context(ctx)
    back = results_from_state(_through_file(results_to_state(results), tmp_path))
    restored = back.execution_contexts()[0].outputs["node"].get_role("default").tags
    assert restored.dtype == object
    assert restored.tolist() == tags.tolist()
    bad = np.array([["a", 1.5], [2, "b"]], dtype=object)
    ctx.set_output("node", mml.Batch(2, {"default": mml.SampleData(tags=bad)}))
    with pytest.raises(SerializationError, match=r"Column 0 of the tags .* mixes kinds of values"):
        results_to_state(results)
