from __future__ import annotations

import warnings

import numpy as np
import pytest

from modularml.context import ExperimentContext
from modularml.data import FeatureSet, FeatureSetColumnReference, FeatureSetReference, FeatureSetView
from modularml.data.schema import ColumnSpec
from modularml.datasets import make_featureset
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidTypeError, ModularMLWarning
from modularml.splitters import ConditionSplitter, RandomSplitter


@pytest.fixture
def fs() -> FeatureSet:
    return make_featureset("cells", n_samples=60, n_points=8, n_groups=6, seed=4)


def _state(fs: FeatureSet) -> tuple:
    return (fs.available_splits, len(fs.split_records), fs.collection.table)


def test_split_random_registers_views_and_a_record(fs: FeatureSet) -> None:
    assert fs.split_random({"train": 0.5, "val": 0.3, "test": 0.2}) is None
    assert fs.available_splits == ["train", "val", "test"]
    assert fs.n_splits == 3
    assert [len(fs[n]) for n in fs.available_splits] == [30, 18, 12]
    assert isinstance(fs.splits["val"], FeatureSetView)
    assert fs.get_split("val") is fs["val"]
    assert fs["train"].is_disjoint_with(fs["val"])
    (record,) = fs.split_records
    assert record.split_names == ("train", "val", "test")
    assert record.applied_to is None
    assert record.splitter == RandomSplitter({"train": 0.5, "val": 0.3, "test": 0.2})


def test_split_returns_views_when_asked(fs: FeatureSet) -> None:
    views = fs.split(RandomSplitter({"a": 0.5, "b": 0.5}, seed=1), return_views=True)
    assert list(views) == ["a", "b"]
    assert views["a"] is fs["a"]
    unregistered = fs.split_random({"c": 0.5, "d": 0.5}, return_views=True, register=False)
    assert set(unregistered) == {"c", "d"}
    assert fs.available_splits == ["a", "b"]


def test_split_of_a_split_registers_on_the_featureset(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.75, "test": 0.25}, group_by="cell_id", seed=2)
    fs["train"].split_random({"fit": 0.8, "early_stop": 0.2}, seed=3)
    assert fs.available_splits == ["train", "test", "fit", "early_stop"]
    train = set(fs["train"].indices.tolist())
    assert set(fs["fit"].indices.tolist()) | set(fs["early_stop"].indices.tolist()) == train
    assert fs.split_records[1].applied_to == "train"
    # a split of an unnamed view records the rows it was applied to
    fs.take(np.arange(10)).split_random({"small_a": 0.5, "small_b": 0.5})
    assert fs.split_records[2].applied_to is None
    assert fs.split_records[2].applied_to_indices.tolist() == list(range(10))


def test_duplicate_split_names_raise_and_change_nothing(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.8, "val": 0.2})
    before = _state(fs)
    with pytest.raises(InvalidArgumentError, match=r"Split 'train' already exists.*clear_splits"):
        fs.split_random({"other": 0.5, "train": 0.5})
    assert _state(fs)[:2] == before[:2]
    assert "other" not in fs.available_splits


def test_empty_split_raises_and_changes_nothing(fs: FeatureSet) -> None:
    with pytest.raises(InvalidArgumentError, match="empty split 'nobody'"):
        fs.split_by_condition(nobody={"cell_id": "cell_99"}, everybody={"soh": lambda s: s > 0})
    assert fs.n_splits == 0
    assert fs.split_records == []


def test_overlapping_condition_splits_warn(fs: FeatureSet) -> None:
    with pytest.warns(ModularMLWarning, match="share"):
        fs.split_by_condition({"all": {"soh": lambda s: s > 0}}, some={"protocol": "A"})
    assert fs.available_splits == ["all", "some"]
    with pytest.raises(InvalidArgumentError, match="given twice"):
        fs.split_by_condition({"x": {"protocol": "A"}}, x={"protocol": "B"})


def test_add_split_get_split_and_clear(fs: FeatureSet) -> None:
    fs.add_split(fs.take([0, 1, 2], label="manual"))
    assert fs["manual"].indices.tolist() == [0, 1, 2]
    with pytest.raises(InvalidArgumentError, match="already exists"):
        fs.add_split(fs.take([3], label="manual"))
    with pytest.raises(InvalidArgumentError, match="has none"):
        fs.add_split(fs.take([3]))
    with pytest.raises(InvalidArgumentError, match="split name"):
        fs.add_split(fs.take([3], label="bad name"))
    other = make_featureset("other", n_samples=5)
    with pytest.raises(InvalidArgumentError, match="belongs to FeatureSet 'other'"):
        fs.add_split(other.take([0], label="foreign"))
    with pytest.raises(InvalidTypeError):
        fs.add_split([0, 1])
    with pytest.raises(KeyError, match=r"no split 'nope'.*manual"):
        fs.get_split("nope")
    fs.clear_splits()
    assert fs.available_splits == []
    assert fs.split_records == []


def test_get_split_is_rebuilt_when_columns_are_added(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.5, "val": 0.5})
    train = fs["train"]
    spec = fs.schema["targets.soh.raw"].with_rep("transformed")
    fs._collection = fs.collection.with_columns({spec: fs.get_targets("np") * 2})
    rebuilt = fs.get_split("train")
    assert rebuilt is not train
    assert rebuilt.indices is train.indices
    assert "targets.soh.transformed" in rebuilt.columns
    assert np.allclose(rebuilt.get_targets("np", rep="transformed"), 2 * rebuilt.get_targets("np"))
    assert fs.get_split("train") is rebuilt


def test_copy_shares_raw_buffers_by_default(fs: FeatureSet) -> None:
    def addresses(f: FeatureSet) -> list[int]:
        out = []
        for column in f.collection.table.columns:
            array = column.chunk(0)
            while hasattr(array, "flatten"):
                array = array.flatten()
            out.append(array.buffers()[-1].address)
        return out

    fs.split_random({"a": 0.5, "b": 0.5})
    copy = fs.copy()
    assert copy.label == "cells_copy"
    assert copy.node_id != fs.node_id
    assert addresses(copy) == addresses(fs)
    assert copy.collection.table.equals(fs.collection.table)
    assert copy.n_splits == 0
    assert not ExperimentContext.get_active().has_node(label="cells_copy")
    deep = fs.copy(label="deep", share_raw_data_buffer=False)
    assert all(a != b for a, b in zip(addresses(deep), addresses(fs), strict=True))
    assert deep.collection.table.equals(fs.collection.table)
    assert fs.available_splits == ["a", "b"]


def test_copy_keeps_only_raw_columns(fs: FeatureSet) -> None:
    spec = fs.schema["targets.soh.raw"].with_rep("transformed")
    fs._collection = fs.collection.with_columns({spec: fs.get_targets("np") * 2})
    assert "targets.soh.transformed" not in fs.copy().get_all_keys()


def test_copy_restore_splits_reapplies_records(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.7, "test": 0.3}, group_by="cell_id", seed=5)
    fs["train"].split_by_condition(warm={"temperature": lambda t: t > 20}, cold={"temperature": lambda t: t <= 20})
    fs.add_split(fs.take([0, 1], label="handpicked"))
    copy = fs.copy(label="again", restore_splits=True, register=True)
    assert copy.available_splits == fs.available_splits
    for name in fs.available_splits:
        assert copy[name].indices.tolist() == fs[name].indices.tolist()
        assert copy[name].source is copy
    assert [r.split_names for r in copy.split_records] == [r.split_names for r in fs.split_records]
    assert ExperimentContext.get_active().get_node(label="again") is copy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"restore_splits": True}, "need register=True"),
        ({"restore_scalers": True, "register": True}, "needs restore_splits=True"),
        ({"label": "bad label"}, "Invalid label"),
    ],
)
def test_copy_option_errors(fs: FeatureSet, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fs.copy(**kwargs)


def test_reference_includes_unspecified_domains(fs: FeatureSet) -> None:
    ref = fs.reference(features="voltage")
    assert isinstance(ref, FeatureSetReference)
    assert ref.features == ("features.voltage.raw",)
    assert ref.targets == ("targets.soh.raw",)
    assert ref.tags == ("tags.cell_id.raw", "tags.protocol.raw", "tags.temperature.raw")
    assert ref.node_id == fs.node_id
    assert ref.node_label == "cells"
    view = ref.resolve()
    assert view.source is fs
    assert view.columns == ref.columns
    assert len(view) == len(fs)
    assert ref == fs.reference(features="voltage")
    assert hash(ref) == hash(fs.reference(features="voltage"))
    assert FeatureSetReference.from_config(ref.get_config()) == ref
    explicit = fs.reference(["features.current.raw"], tags="cell_id")
    assert explicit.features == ("features.current.raw",)
    assert explicit.tags == ("tags.cell_id.raw",)
    with pytest.raises(ColumnNotFoundError):
        fs.reference(features="nope")


def test_column_reference(fs: FeatureSet) -> None:
    ref = fs.column_reference(target="soh")
    assert isinstance(ref, FeatureSetColumnReference)
    assert ref.column == "targets.soh.raw"
    assert fs.column_reference("features.voltage.raw").key == "voltage"
    assert fs.column_reference(feature="features.current").column == "features.current.raw"
    assert ref.resolve().get_targets("np").tolist() == fs.get_targets("np").tolist()
    assert FeatureSetColumnReference.from_config(ref.get_config()) == ref
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        fs.column_reference(feature="voltage", target="soh")
    with pytest.raises(InvalidArgumentError, match="several columns"):
        fs.column_reference(feature="*")


def test_references_resolve_against_a_given_context(fs: FeatureSet, fresh_context: ExperimentContext) -> None:
    ref = fs.reference()
    with ExperimentContext().activate():
        with pytest.raises(KeyError, match="cells"):
            ref.resolve()
        assert ref.resolve_featureset(ctx=fresh_context) is fs


def test_visualize_returns_mermaid_text(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.5, "val": 0.5}, seed=1)
    fs["train"].split_random({"a": 0.5, "b": 0.5}, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs.split_by_condition(some={"protocol": "A"})
    text = fs.visualize()
    assert text.startswith("flowchart TD")
    assert "FeatureSet cells" in text
    assert "60 samples" in text
    assert "features.voltage.raw: 8 float32" in text
    assert "split_train --> split_a" in text
    assert "overlap:" in text
    assert text.count("tags.cell_id.raw") == 1  # tags only on the root by default
    assert "tags.cell_id.raw" not in fs.visualize(show_tags=False)
    assert "overlap:" not in fs.visualize(show_overlaps=False)
    assert fs.visualize(show_tags=True).count("tags.cell_id.raw") == 1 + fs.n_splits


def test_state_round_trip_in_memory(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.5, "val": 0.5})
    empty = FeatureSet.from_config(fs.get_config(), register=False)
    assert len(empty) == 0
    assert empty.label == "cells"
    assert empty.node_id == fs.node_id
    empty.set_state(fs.get_state())
    assert empty.collection.table.equals(fs.collection.table)
    assert empty["val"].indices.tolist() == fs["val"].indices.tolist()
    before = empty.available_splits
    with pytest.raises(InvalidArgumentError, match="beyond"):
        empty.set_state({**fs.get_state(), "splits": {"bad": np.array([10_000])}})
    assert empty.available_splits == before


def test_failing_split_leaves_everything_unchanged(fs: FeatureSet) -> None:
    fs.split_random({"train": 0.5, "val": 0.5})
    table = fs.collection.table
    for bad in (
        lambda: fs.split_random({"a": 0.5, "b": 0.6}),
        lambda: fs.split_random({"a": 0.5, "b": 0.5}, group_by="nope"),
        lambda: fs.split(ConditionSplitter(a={"nope": 1})),
        lambda: fs.split("not a splitter"),
    ):
        with pytest.raises((ValueError, KeyError, TypeError)):
            bad()
        assert fs.available_splits == ["train", "val"]
        assert len(fs.split_records) == 1
        assert fs.collection.table is table


def test_column_spec_is_reachable_from_schema(fs: FeatureSet) -> None:
    assert fs.schema["features.voltage.raw"] == ColumnSpec("features", "voltage", "raw", (8,), "float32")


def test_remove_split_keeps_the_rows_and_the_other_splits() -> None:
    from modularml.datasets import make_featureset

    fs = make_featureset("cells", n_samples=40, seed=0)
    fs.split_random({"train": 0.5, "val": 0.5}, seed=1)
    n = len(fs)
    fs.remove_split("val")
    assert fs.available_splits == ["train"]
    assert len(fs) == n
    with pytest.raises(KeyError, match="no split 'val'"):
        fs.remove_split("val")
    fs.remove_split("val", missing_ok=True)
