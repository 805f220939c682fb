from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.phases import InputBinding
from modularml_numpy.models import LinearModel


def test_for_training_accepts_node_instance_id_and_label(linear_setup) -> None:
    s = linear_setup()
    sampler = mml.SimpleSampler(batch_size=8)
    bindings = [
        InputBinding.for_training(node=node, sampler=sampler, upstream=up, split="train")
        for node, up in [(s.head, None), (s.head.node_id, s.fs), ("head", "data"), ("head", s.fs["train"])]
    ]
    assert {b.node_id for b in bindings} == {s.head.node_id}
    assert all(b.upstream_ref == s.head.upstream_refs[0] for b in bindings)
    assert bindings[0].input_key == (s.head.node_id, s.head.upstream_refs[0])


def test_resolve_input_view_and_materialize_batches(linear_setup) -> None:
    s = linear_setup()
    binding = InputBinding.for_training(node=s.head, sampler=mml.SimpleSampler(batch_size=10), split="train")
    view = binding.resolve_input_view()
    np.testing.assert_array_equal(view.indices, s.fs["train"].indices)
    batches = binding.materialize_batches(show_progress=False)
    assert [b.n_samples for b in batches] == [10, 10, 10, 10, 8]
    used = np.concatenate([b.role_indices["default"] for b in batches])
    np.testing.assert_array_equal(np.sort(used), np.sort(s.fs["train"].indices))
    whole = InputBinding.for_evaluation(node=s.head).materialize_batches()
    assert len(whole) == 1
    assert whole[0].n_samples == len(s.fs)


def test_config_round_trip(linear_setup) -> None:
    s = linear_setup()
    binding = InputBinding.for_training(node=s.head, sampler=mml.SimpleSampler(batch_size=4, seed=3), split="val")
    config = binding.get_config()
    rebuilt = InputBinding.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.sampler == binding.sampler
    assert rebuilt.sampler is not binding.sampler
    evaluation = InputBinding.for_evaluation(node="head", split="val")
    assert InputBinding.from_config(evaluation.get_config()).get_config() == evaluation.get_config()


def test_binding_to_a_non_head_node_is_refused(linear_setup) -> None:
    s = linear_setup()
    tail = mml.ModelNode("tail", LinearModel(output_shape=(1,)), s.head)
    with pytest.raises(ValueError, match="not a head node"):
        InputBinding.for_evaluation(node=tail)


def test_unknown_split_and_unknown_upstream_are_refused(linear_setup, regression_fs) -> None:
    s = linear_setup()
    with pytest.raises(KeyError, match="no split 'test'"):
        InputBinding.for_evaluation(node=s.head, split="test")
    other = regression_fs(label="other")
    with pytest.raises(KeyError, match="no input from FeatureSet 'other'"):
        InputBinding.for_evaluation(node=s.head, upstream=other)
    with pytest.raises(TypeError, match="BaseSampler"):
        InputBinding.for_training(node=s.head, sampler="simple")


def test_ambiguous_upstream_is_refused_clearly(regression_fs) -> None:
    from modularml.nodes import ConcatNode

    fs = regression_fs()
    other = regression_fs(label="other", seed=1)
    cat = ConcatNode("cat", [fs.reference(features=["a"]), other.reference(features=["b"])])
    with pytest.raises(ValueError, match="has 2 upstream FeatureSets"):
        InputBinding.for_evaluation(node=cat)
    assert InputBinding.for_evaluation(node=cat, upstream="other").upstream_ref.node_label == "other"
    both = ConcatNode("both", [fs.reference(features=["a"]), fs.reference(features=["b"])])
    with pytest.raises(ValueError, match="takes 2 inputs from FeatureSet 'data'"):
        InputBinding.for_evaluation(node=both, upstream=fs)
