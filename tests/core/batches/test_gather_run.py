"""Sampler batches read in order gather several batches' rows at once; the batches are the same as one by one."""

from __future__ import annotations

import numpy as np
import pytest

import modularml.batches.batch_view as batch_view
from modularml.batches import Batch, BatchView
from modularml.batches.batch_view import _GatherRun
from modularml.data import FeatureSet
from modularml.samplers import SimpleSampler


@pytest.fixture
def fs() -> FeatureSet:
    n = 53
    rng = np.random.default_rng(3)
    return FeatureSet.from_dict(
        "cells",
        {
            "voltage": rng.normal(size=(n, 4)).astype(np.float32),
            "current": rng.normal(size=(n, 4)).astype(np.float32),
            "soh": rng.uniform(size=n).astype(np.float32),
            "cell_id": [f"c{i % 3}" for i in range(n)],
        },
        feature_keys=["voltage", "current"],
        target_keys="soh",
        tag_keys="cell_id",
    )


def _unlinked(view: BatchView) -> BatchView:
    weights = view.role_indice_weights
    return BatchView(
        view.source,
        {r: np.array(i) for r, i in view.role_indices.items()},
        None if weights is None else {r: np.array(w) for r, w in weights.items()},
        columns=view.columns,
    )


def _assert_same(got: Batch, expected: Batch) -> None:
    assert got.roles == expected.roles
    assert got.batch_size == expected.batch_size
    for role in expected.roles:
        a, b = got.get_role(role), expected.get_role(role)
        for domain in ("features", "targets", "tags"):
            x, y = a[domain], b[domain]
            if isinstance(y, dict):
                assert list(x) == list(y)
                for key in y:
                    np.testing.assert_array_equal(x[key], y[key])
            else:
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a.sample_uuids, b.sample_uuids)
        np.testing.assert_array_equal(got.get_role_weights(role), expected.get_role_weights(role))
        np.testing.assert_array_equal(got.get_role_mask(role), expected.get_role_mask(role))


@pytest.mark.parametrize("fmt", ["numpy", "dict_numpy"])
def test_sampler_batches_read_in_order_equal_batches_gathered_alone(fs: FeatureSet, fmt: str) -> None:
    sampler = SimpleSampler(batch_size=8, shuffle=True, seed=1, source=fs, show_progress=False)
    views = sampler.get_batches(epoch=2)
    assert [len(v) for v in views] == [8] * 6 + [5]  # the short last batch too
    for view in views:
        _assert_same(view.materialize_batch(fmt), _unlinked(view).materialize_batch(fmt))


def test_a_window_shares_one_gather_and_is_bounded(fs: FeatureSet, monkeypatch: pytest.MonkeyPatch) -> None:
    views = SimpleSampler(batch_size=8, shuffle=True, seed=1, source=fs, show_progress=False).get_batches()
    first, second = views[0].materialize_batch(), views[1].materialize_batch()
    assert first.features.base is not None
    assert first.features.base is second.features.base  # slices of one gathered window

    views = SimpleSampler(batch_size=8, shuffle=True, seed=2, source=fs, show_progress=False).get_batches()
    row_bytes = 8 * 4 + 4 + fs.collection.sample_uuid_strings().itemsize + 8  # features, target, uuid, tag
    monkeypatch.setattr(batch_view, "_RUN_BYTES", row_bytes * 16)  # two batches per window
    batches = [v.materialize_batch() for v in views[:3]]
    assert batches[0].features.base is batches[1].features.base
    assert batches[1].features.base is not batches[2].features.base


def test_out_of_order_and_repeated_reads_give_the_same_batches(fs: FeatureSet) -> None:
    views = SimpleSampler(batch_size=8, shuffle=True, seed=4, source=fs, show_progress=False).get_batches()
    for position in [3, 3, 0, 6, 1, 1, 5]:
        view = views[position]
        _assert_same(view.materialize_batch(), _unlinked(view).materialize_batch())
    # another column selection keeps its own window
    narrow = views[2].materialize_batch(features="voltage")
    np.testing.assert_array_equal(narrow.features, _unlinked(views[2]).materialize_batch(features="voltage").features)


def test_linked_views_with_roles_weights_and_masked_rows(fs: FeatureSet) -> None:
    views = [
        BatchView(fs, {"anchor": [0, 1, 2], "pair": [3, -1, 5]}, {"pair": [0.5, 2.0, 1.5]}),
        BatchView(fs, {"anchor": [7, -1, 9], "pair": [10, 11, 12]}, {"pair": [1.0, 0.25, 3.0]}),
        BatchView(fs, {"anchor": [-1, -1, -1], "pair": [-1, -1, -1]}),
    ]
    expected = [v.materialize_batch() for v in views]
    _GatherRun.link(views)
    got = [v.materialize_batch() for v in views]
    for g, e in zip(got, expected, strict=True):
        _assert_same(g, e)
    np.testing.assert_array_equal(got[0].get_role_weights("pair"), [0.5, 0.0, 1.5])
    np.testing.assert_array_equal(got[1].get_role("anchor").features[1], np.zeros((2, 4), dtype=np.float32))
    assert got[1].get_role("anchor").sample_uuids[1] == ""
    assert not got[1].uniform_weights
    assert list(got[2].get_role("pair").sample_uuids) == ["", "", ""]


def test_batch_sample_uuids_are_strings_of_the_featureset(fs: FeatureSet) -> None:
    view = SimpleSampler(batch_size=8, shuffle=False, source=fs, show_progress=False).get_batches()[1]
    uuids = view.materialize_batch().sample_uuids
    assert uuids.dtype.kind == "U"
    assert list(uuids) == list(fs.get_sample_uuids()[8:16])
