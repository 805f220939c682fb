"""The build-shape rules shared by models (``modularml.models.resolve_build_shapes``)."""

from __future__ import annotations

import pytest

from modularml.errors import InvalidArgumentError
from modularml.models import resolve_build_shapes


def test_given_shapes_win_over_missing_declared_ones_and_are_normalised() -> None:
    assert resolve_build_shapes("M", (3, [2, 2]), (None, None), None) == ((3,), (2, 2))
    assert resolve_build_shapes("M", (None, None), ((3,), (1,)), None) == ((3,), (1,))
    assert resolve_build_shapes("M", ((3,), None), (None, None), None, required=(True, False)) == ((3,), None)


def test_a_built_model_accepts_its_own_shapes_or_none_and_refuses_others() -> None:
    assert resolve_build_shapes("M", (None, None), (None, None), ((3,), (1,))) is None
    assert resolve_build_shapes("M", ((3,), (1,)), (None, None), ((3,), (1,))) is None
    with pytest.raises(InvalidArgumentError, match=r"M is built for input shape \(3,\), not \(4,\); pass force=True"):
        resolve_build_shapes("M", ((4,), None), (None, None), ((3,), (1,)))


def test_disagreeing_or_missing_shapes_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"M was declared with output_shape=\(1,\) but is built with"):
        resolve_build_shapes("M", (None, (2,)), ((3,), (1,)), None)
    with pytest.raises(InvalidArgumentError, match=r"M needs its output_shape to build: pass it to M\(\)"):
        resolve_build_shapes("M", ((3,), None), (None, None), None)
    with pytest.raises(InvalidArgumentError, match="M needs its input_shape"):
        resolve_build_shapes("M", (None, (1,)), (None, None), None, required=(True, False))
