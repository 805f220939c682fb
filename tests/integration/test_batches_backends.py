"""Batches in framework formats: torch and tensorflow tensors through the backend protocol."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import modularml as mml
from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.samplers import SimpleSampler, TripletSampler
from modularml.similarity import SimilarityCondition as Cond

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    with ExperimentContext(registration_policy="error").activate() as ctx:
        yield ctx


@pytest.fixture
def fs() -> FeatureSet:
    rng = np.random.default_rng(0)
    n = 40
    return FeatureSet.from_dict(
        "cells",
        {
            "v": rng.random((n, 5), dtype=np.float32),
            "i": rng.random((n, 5), dtype=np.float32),
            "soh": rng.random(n).astype(np.float32),
            "cell": [f"c{k % 4}" for k in range(n)],
            "temp": rng.random(n).astype(np.float32),
        },
        ["v", "i"],
        "soh",
        ["cell", "temp"],
    )


@pytest.mark.parametrize("fmt", ["torch", "tf"])
def test_materialize_in_a_backend_format(fs: FeatureSet, fmt: str) -> None:
    backend = mml.get_backend(fmt)
    view = BatchView(fs, {"anchor": [0, 1, 2], "pair": [3, -1, 5]}, {"pair": [0.5, 1.0, 2.0]})
    batch = view.materialize_batch(fmt)
    pair = batch.get_role("pair")
    assert backend.is_native(pair.features)
    assert tuple(pair.features.shape) == (3, 2, 5)
    assert backend.is_native(pair.targets)
    np.testing.assert_allclose(backend.to_numpy(batch.get_role_weights("pair")), [0.5, 0.0, 2.0])
    np.testing.assert_array_equal(backend.to_numpy(batch.get_role_mask("pair")), [True, False, True])
    assert isinstance(pair.tags, np.ndarray)  # text tags stay numpy
    assert isinstance(pair.sample_uuids, np.ndarray)
    expected = np.stack([fs.get_features("dict_numpy")[k][[0, 1, 2]] for k in ("v", "i")], axis=1)
    np.testing.assert_array_equal(backend.to_numpy(batch.get_role("anchor").features), expected)


@pytest.mark.parametrize("fmt", ["dict_torch", "dict_tf"])
def test_dict_backend_formats_convert_numeric_tags(fs: FeatureSet, fmt: str) -> None:
    backend = mml.get_backend(fmt[5:])
    batch = BatchView(fs, [4, 5]).materialize_batch(fmt)
    assert sorted(batch.features) == ["i", "v"]
    assert backend.is_native(batch.features["v"])
    assert backend.is_native(batch.tags["temp"])
    assert isinstance(batch.tags["cell"], np.ndarray)


def test_torch_conversion_is_zero_copy_and_once_per_array(fs: FeatureSet) -> None:
    batch = BatchView(fs, [7, 3, 9]).materialize_batch("numpy")
    moved = batch.to_backend("torch")
    assert moved.features.data_ptr() == batch.features.ctypes.data  # shares the gathered array
    assert moved.to_backend("torch").features is moved.features  # already torch: not converted again
    back = moved.to_format("numpy")
    np.testing.assert_array_equal(back.features, batch.features)
    assert isinstance(back.get_role_weights("default"), np.ndarray)


def test_concat_and_detach_with_autograd_tensors(fs: FeatureSet) -> None:
    sampler = SimpleSampler(batch_size=16, source=fs)
    batches = [view.materialize_batch("torch") for view in sampler.get_batches()]
    weight = torch.ones(1, requires_grad=True)
    with_outputs = [
        b.with_role_data({"default": b.get_role("default").replace(outputs=b.targets[:, None] * weight)})
        for b in batches
    ]
    joined = Batch.concat(with_outputs)
    assert joined.batch_size == 40
    assert isinstance(joined.outputs, torch.Tensor)
    assert joined.outputs.requires_grad
    detached = joined.detach_tensors()
    assert not detached.outputs.requires_grad
    np.testing.assert_array_equal(detached.outputs.numpy()[:, 0], fs.get_targets("numpy"))
    tf_batch = joined.to_format("tf")
    assert mml.get_backend("tf").is_native(tf_batch.outputs)


def test_triplet_batches_in_torch_and_an_execution_context(fs: FeatureSet) -> None:
    sampler = TripletSampler(
        {"soh": Cond(tolerance=0.2)}, {"soh": Cond(mode="dissimilar", tolerance=0.2)}, batch_size=8, seed=0, source=fs
    )
    ref = fs.reference(features="v", targets="soh")
    ctx = ExecutionContext("train")
    ctx.set_input("encoder", ref, sampler.get_batches()[0])
    batch = ctx.materialize_inputs("torch")[("encoder", ref)]
    assert batch.roles == ["anchor", "positive", "negative"]
    assert tuple(batch.get_role("positive").features.shape) == (8, 5)
    assert batch.get_role_weights("negative").dtype == torch.float32
