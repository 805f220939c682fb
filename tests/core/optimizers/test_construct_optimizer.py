"""The optimizer construction shared by backends (``modularml.backends.components.construct_optimizer``)."""

from __future__ import annotations

import pytest

from modularml.backends.components import construct_optimizer
from modularml.errors import InvalidArgumentError, InvalidTypeError


class _Recorder:
    def __init__(self, params: list[float], lr: float = 0.1) -> None:
        if lr <= 0:
            raise ValueError("lr must be positive")
        self.params, self.lr = params, lr


def test_builds_spec_over_the_parameters_with_the_keywords() -> None:
    opt = construct_optimizer(_Recorder, {"lr": 0.5}, iter([1.0, 2.0]), backend="demo")
    assert opt.params == [1.0, 2.0]
    assert opt.lr == 0.5


def test_refuses_non_callables_empty_parameters_and_bad_keywords() -> None:
    with pytest.raises(InvalidTypeError, match="A demo optimizer is a class or a factory"):
        construct_optimizer("adam", {}, [1.0], backend="demo")
    with pytest.raises(InvalidArgumentError, match="demo optimizers are built over the parameters"):
        construct_optimizer(_Recorder, {}, None, backend="demo")
    with pytest.raises(InvalidArgumentError, match=r"Cannot construct the optimizer _Recorder with \{'momentum': 1\}"):
        construct_optimizer(_Recorder, {"momentum": 1}, [1.0], backend="demo")
    with pytest.raises(InvalidArgumentError, match="lr must be positive"):
        construct_optimizer(_Recorder, {"lr": -1}, [1.0], backend="demo")
    with pytest.raises(ValueError, match="lr must be positive") as info:  # not one of ``errors``: passes through
        construct_optimizer(_Recorder, {"lr": -1}, [1.0], backend="demo", errors=(TypeError,))
    assert not isinstance(info.value, InvalidArgumentError)
