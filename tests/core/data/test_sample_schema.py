from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from modularml.data.schema import (
    SAMPLE_UUIDS_COLUMN,
    ColumnSpec,
    SampleSchema,
    column_name,
    parse_column_name,
)
from modularml.errors import InvalidArgumentError, InvalidLabelError


def test_column_name_round_trip() -> None:
    assert column_name("features", "voltage", "raw") == "features.voltage.raw"
    assert parse_column_name("targets.soh.transformed") == ("targets", "soh", "transformed")


@pytest.mark.parametrize("bad", ["a.b", "a b", "a/b", "a\\b", "a:b", ""])
def test_keys_with_separators_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidLabelError, match="column key"):
        column_name("features", bad, "raw")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("features.voltage", "domain.key.rep"),
        ("inputs.voltage.raw", "Unknown domain 'inputs'"),
        ("features.voltage.scaled", "Unknown representation 'scaled'"),
    ],
)
def test_malformed_column_names_name_the_problem(name: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_column_name(name)


def test_arrow_types_carry_the_per_sample_shape() -> None:
    spec = ColumnSpec("features", "map", "raw", (8, 16), "float32")
    assert spec.arrow_type == pa.list_(pa.list_(pa.float32(), 16), 8)
    assert spec.size == 128
    field = spec.arrow_field()
    assert json.loads(field.metadata[b"modularml.shape"]) == [8, 16]
    assert field.metadata[b"modularml.dtype"] == b"float32"
    assert ColumnSpec.from_arrow_field(field) == spec


def test_string_and_scalar_specs() -> None:
    assert ColumnSpec("tags", "cell", "raw", (), "string").arrow_type == pa.string()
    assert ColumnSpec("targets", "soh", "raw", (), "float64").arrow_type == pa.float64()


def test_keys_must_be_unique_across_domains() -> None:
    with pytest.raises(InvalidArgumentError, match="'x' is used in both 'features' and 'targets'"):
        SampleSchema(
            [ColumnSpec("features", "x", "raw", (), "float32"), ColumnSpec("targets", "x", "raw", (), "float32")]
        )


def test_a_key_may_have_two_representations() -> None:
    schema = SampleSchema(
        [
            ColumnSpec("features", "x", "raw", (3,), "float32"),
            ColumnSpec("features", "x", "transformed", (3,), "float32"),
        ]
    )
    assert schema.keys("features") == ["x"]
    assert schema.reps("features", "x") == ["raw", "transformed"]
    assert schema.column_names(rep="transformed") == ["features.x.transformed"]


def test_schema_round_trips_through_arrow_and_json() -> None:
    schema = SampleSchema(
        [
            ColumnSpec("features", "v", "raw", (100,), "float32"),
            ColumnSpec("targets", "soh", "raw", (), "float64"),
            ColumnSpec("tags", "cell", "raw", (), "string"),
        ]
    )
    arrow = schema.to_arrow()
    assert arrow.names == ["features.v.raw", "targets.soh.raw", "tags.cell.raw", SAMPLE_UUIDS_COLUMN]
    assert SampleSchema.from_arrow(arrow) == schema
    assert SampleSchema.from_json(json.loads(arrow.metadata[b"modularml.schema"])) == schema


def test_unsupported_types_are_rejected_with_the_column_name() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'features.x.raw'.*cannot hold"):
        ColumnSpec.from_arrow_field(pa.field("features.x.raw", pa.struct([("a", pa.int8())])))
    with pytest.raises(InvalidArgumentError, match="Unsupported dtype complex128"):
        ColumnSpec("features", "x", "raw", (), np.dtype("complex128").name)


def test_metadata_contradicting_the_type_is_rejected() -> None:
    field = pa.field("features.x.raw", pa.list_(pa.float32(), 4), metadata={b"modularml.shape": b"[5]"})
    with pytest.raises(InvalidArgumentError, match="shape"):
        ColumnSpec.from_arrow_field(field)
