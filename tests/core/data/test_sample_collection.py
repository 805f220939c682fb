from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pytest

from modularml.data.collection import SampleCollection, generate_sample_uuids
from modularml.errors import ColumnNotFoundError, InvalidArgumentError


def _collection(n: int = 6) -> SampleCollection:
    rng = np.random.default_rng(0)
    return SampleCollection.from_columns(
        {"curve": rng.random((n, 5)).astype(np.float32), "map": rng.random((n, 2, 3))},
        {"y": np.arange(n, dtype=np.float64)},
        {"cell": [f"c{i % 2}" for i in range(n)]},
    )


def test_generated_uuids_are_canonical_unique_uuid4() -> None:
    uuids = generate_sample_uuids(1000).to_pylist()
    assert len(set(uuids)) == 1000
    parsed = [uuid.UUID(u) for u in uuids[:50]]
    assert all(p.version == 4 and str(p) == u for p, u in zip(parsed, uuids, strict=False))
    assert len(generate_sample_uuids(0)) == 0


def test_columns_read_back_with_their_shapes_and_dtypes() -> None:
    c = _collection()
    assert c.column_names() == ["features.curve.raw", "features.map.raw", "targets.y.raw", "tags.cell.raw"]
    assert c.to_numpy("features.curve.raw").shape == (6, 5)
    assert c.to_numpy("features.curve.raw").dtype == np.float32
    assert c.to_numpy("features.map.raw").shape == (6, 2, 3)
    assert c.to_numpy("targets.y.raw").tolist() == [0, 1, 2, 3, 4, 5]
    assert c.to_numpy("tags.cell.raw").tolist() == ["c0", "c1"] * 3
    assert len(c.sample_uuids()) == 6


def test_numpy_conversion_happens_once_is_read_only_and_zero_copy() -> None:
    c = _collection()
    first = c.to_numpy("features.curve.raw")
    assert c.to_numpy("features.curve.raw") is first
    assert not first.flags.writeable
    values = c.table.column("features.curve.raw").chunk(0).flatten()
    assert first.__array_interface__["data"][0] == values.buffers()[1].address + values.offset * 4


def test_input_arrays_are_copied_so_later_changes_do_not_leak() -> None:
    data = np.zeros((4, 3), dtype=np.float32)
    c = SampleCollection.from_columns({"x": data})
    data[:] = 7
    assert c.to_numpy("features.x.raw").sum() == 0


def test_mismatched_lengths_name_every_column() -> None:
    with pytest.raises(InvalidArgumentError, match=r"different lengths \('a': 3, 'b': 2\)"):
        SampleCollection.from_columns({"a": [1, 2, 3], "b": [1, 2]})


def test_ragged_columns_raise_with_the_offending_sample() -> None:
    with pytest.raises(InvalidArgumentError, match=r"ragged.*sample 1 has length 2"):
        SampleCollection.from_columns({"a": [[1, 2, 3], [1, 2]]})


def test_mixed_value_types_are_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'features.a.raw' mixes strings with other values"):
        SampleCollection.from_columns({"a": np.array(["x", 1.5], dtype=object)})


def test_tables_are_normalised_and_validated() -> None:
    table = pa.table(
        {
            "features.x.raw": pa.array([[1.0, 2.0], [3.0, 4.0]], type=pa.list_(pa.float64())),
            "tags.t.raw": pa.array(["a", "b"]).dictionary_encode(),
        }
    )
    c = SampleCollection(table)
    assert c.schema["features.x.raw"].shape == (2,)
    assert c.to_numpy("features.x.raw").tolist() == [[1, 2], [3, 4]]
    assert c.to_numpy("tags.t.raw").tolist() == ["a", "b"]
    assert c.table.column("sample_uuids").type == pa.string()


def test_multi_chunk_columns_convert_once() -> None:
    chunked = pa.chunked_array([pa.array([1.0, 2.0]), pa.array([3.0])])
    c = SampleCollection(pa.table({"features.x.raw": chunked}))
    assert c.to_numpy("features.x.raw").tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"voltage": [1.0]}), "not of the form 'domain.key.rep'"),
        (pa.table({"features.x.raw": pa.array([1.0, None])}), "1 missing"),
        (pa.table({"features.x.raw": pa.array([[1.0], [1.0, 2.0]])}), "ragged"),
        (pa.table({"features.x.raw": [1.0, 2.0], "sample_uuids": ["a", "a"]}), "must be unique"),
        (pa.table({"features.x.raw": [1.0], "sample_uuids": pa.array([None], type=pa.string())}), "missing"),
    ],
)
def test_bad_tables_raise_naming_the_problem(table: pa.Table, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        SampleCollection(table)


def test_duplicate_canonical_uuids_are_found() -> None:
    uuids = generate_sample_uuids(1000).to_pylist()
    uuids[700] = uuids[3]
    with pytest.raises(InvalidArgumentError, match=f"1 repeat.*{uuids[3]}"):
        SampleCollection(pa.table({"features.x.raw": np.arange(1000.0), "sample_uuids": uuids}))
    sliced = pa.table({"features.x.raw": np.arange(1000.0), "sample_uuids": generate_sample_uuids(1000)}).slice(10)
    assert len(SampleCollection(sliced)) == 990


def test_unknown_columns_raise_column_not_found() -> None:
    with pytest.raises(ColumnNotFoundError, match=r"No column 'features.nope.raw'"):
        _collection().to_numpy("features.nope.raw")


def test_select_and_shallow_copy_share_buffers() -> None:
    c = _collection()
    address = c.table.column("targets.y.raw").chunk(0).buffers()[1].address
    for other in (c.select(["targets.y.raw"]), c.shallow_copy()):
        assert other.table.column("targets.y.raw").chunk(0).buffers()[1].address == address
    deep = c.deep_copy()
    assert deep.table.column("targets.y.raw").chunk(0).buffers()[1].address != address
    assert deep.table.equals(c.table)


def test_with_columns_adds_a_representation_and_keeps_other_caches() -> None:
    c = _collection()
    curve = c.to_numpy("features.curve.raw")
    spec = c.schema["targets.y.raw"].with_rep("transformed")
    updated = c.with_columns({spec: np.arange(6.0) * 2})
    assert updated.column_names("targets") == ["targets.y.raw", "targets.y.transformed"]
    assert updated.to_numpy("targets.y.transformed").tolist() == [0, 2, 4, 6, 8, 10]
    assert updated.to_numpy("features.curve.raw") is curve
    assert c.column_names("targets") == ["targets.y.raw"]
    with pytest.raises(InvalidArgumentError, match="has 2 values"):
        c.with_columns({spec: [1.0, 2.0]})
