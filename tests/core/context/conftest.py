from __future__ import annotations

from collections.abc import Iterator

import pytest

from modularml.context import ExperimentContext


@pytest.fixture(autouse=True)
def ctx() -> Iterator[ExperimentContext]:
    """A fresh context, active for the test, with the script policy ``error`` (nothing leaks out)."""
    context = ExperimentContext(registration_policy="error")
    with context.activate():
        yield context
