from __future__ import annotations

from collections.abc import Iterator

import pytest

import modularml as mml
from modularml.context import ExperimentContext

pytest.importorskip(
    "modularml_numpy",
    reason="callbacks run in phases that train with the numpy backend plugin (plugins/modularml_numpy)",
)


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    """Each test registers its FeatureSets, nodes and graph in its own context (policy ``error``)."""
    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        mml.get_backend("numpy").seed(0)
        yield ctx
