from __future__ import annotations

from collections.abc import Iterator

import pytest

from modularml.context import ExperimentContext


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    """Each test registers its FeatureSets in its own context (policy ``error``)."""
    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        yield ctx
