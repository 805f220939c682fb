"""Gradients of the numpy backend's autograd, checked against central finite differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from modularml.errors import InvalidArgumentError
from modularml_numpy.autograd import Tensor, concat, enable_grad, is_grad_enabled, no_grad, pad, stack


def _numeric_grad(fn: Callable[..., Tensor], arrays: list[np.ndarray], index: int, eps: float = 1e-6) -> np.ndarray:
    """d sum(fn(*arrays)) / d arrays[index], by central differences in float64."""
    base = [a.astype("float64") for a in arrays]
    grad = np.zeros_like(base[index])
    for position in np.ndindex(base[index].shape):
        shifted = []
        for sign in (1, -1):
            trial = [a.copy() for a in base]
            trial[index][position] += sign * eps
            shifted.append(float(fn(*[Tensor(a) for a in trial]).sum().data))
        grad[position] = (shifted[0] - shifted[1]) / (2 * eps)
    return grad


def _check(fn: Callable[..., Tensor], *arrays: np.ndarray) -> None:
    tensors = [Tensor(a.astype("float64"), requires_grad=True) for a in arrays]
    fn(*tensors).sum().backward()
    for i, tensor in enumerate(tensors):
        assert tensor.grad is not None, f"input {i} got no gradient"
        assert tensor.grad.shape == arrays[i].shape
        np.testing.assert_allclose(tensor.grad, _numeric_grad(fn, list(arrays), i), rtol=1e-5, atol=1e-6)


RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 4))
ROW = RNG.standard_normal((4,))
POSITIVE = RNG.uniform(0.5, 2.0, (3, 4))


@pytest.mark.parametrize(
    ("label", "fn", "arrays"),
    [
        ("add", lambda a, b: a + b, (A, B)),
        ("add broadcast", lambda a, b: a + b, (A, ROW)),
        ("sub broadcast", lambda a, b: b - a, (A, ROW)),
        ("mul", lambda a, b: a * b, (A, B)),
        ("mul broadcast column", lambda a, b: a * b, (A, RNG.standard_normal((3, 1)))),
        ("div", lambda a, b: a / b, (A, POSITIVE)),
        ("scalar ops", lambda a: (2.0 * a - 1) / 4 + 3 - a * 0.5, (A,)),
        ("reflected scalar div", lambda a: 2.0 / a, (POSITIVE,)),
        ("neg", lambda a: -a, (A,)),
        ("pow", lambda a: a**3, (A,)),
        ("square", lambda a: a.square(), (A,)),
        ("abs", lambda a: a.abs(), (A + 0.1,)),
        ("exp", lambda a: a.exp(), (A,)),
        ("log", lambda a: a.log(), (POSITIVE,)),
        ("matmul 2-D", lambda a, b: a @ b, (A, RNG.standard_normal((4, 2)))),
        ("matmul batched", lambda a, b: a @ b, (RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4, 5)))),
        ("matmul vector right", lambda a, b: a @ b, (A, ROW)),
        ("matmul vector left", lambda a, b: a @ b, (RNG.standard_normal(3), A)),
        ("matmul vectors", lambda a, b: a @ b, (ROW, RNG.standard_normal(4))),
        ("sum axis", lambda a: a.sum(axis=1) * a.sum(axis=0, keepdims=True).sum(), (A,)),
        ("mean axes", lambda a: a.mean(axis=(0, 2)) ** 2, (RNG.standard_normal((2, 3, 4)),)),
        ("mean all keepdims", lambda a: a * a.mean(keepdims=True), (A,)),
        ("reshape", lambda a: a.reshape(4, 3) @ a, (A,)),
        ("transpose", lambda a: a.T @ a, (A,)),
        ("getitem", lambda a: a[1:, ::2] * a[0, 1:3], (A,)),
        ("getitem fancy repeats", lambda a: a[[0, 0, 2]], (A,)),
        ("concat", lambda a, b: concat([a, b, a], axis=1), (A, B)),
        ("stack", lambda a, b: stack([a, b * a], axis=-1) ** 2, (A, B)),
        ("reused input", lambda a: (a * a + a) * (a - 1.0), (A,)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_gradients_match_finite_differences(label: str, fn: Callable[..., Tensor], arrays: tuple) -> None:
    _check(fn, *arrays)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradients(mode: str) -> None:
    weights = RNG.standard_normal((3 + 3, 4 + 5))
    _check(lambda a: pad(a, [(1, 2), (3, 2)], mode=mode, constant_value=0.5) * weights, A)


def test_pad_wider_than_the_axis() -> None:
    _check(lambda a: pad(a, [(0, 0), (5, 6)], mode="circular") ** 2, A)


def test_gradients_accumulate_over_backward_calls() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 2, 3 + 4])
    x.zero_grad()
    assert x.grad is None


def test_numpy_on_the_left_defers_to_the_tensor() -> None:
    x = Tensor(np.ones(3, dtype="float32"), requires_grad=True)
    result = np.arange(3, dtype="float32") * x + np.float64(1.0)
    assert isinstance(result, Tensor)
    assert result.dtype == np.float32, "a numpy float64 scalar must not upcast float32 tensors"
    result.sum().backward()
    np.testing.assert_allclose(x.grad, [0, 1, 2])


def test_no_grad_records_nothing_and_nests() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
        with enable_grad():
            z = x * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad
    assert z.requires_grad
    with pytest.raises(InvalidArgumentError, match="no operations"):
        y.sum().backward()


def test_backward_needs_a_scalar_or_a_gradient() -> None:
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(InvalidArgumentError, match=r"one element.*\(2, 2\)"):
        (x * 2).backward()
    (x * 2).backward(np.full((2, 2), 0.5))
    np.testing.assert_allclose(x.grad, np.ones((2, 2)))


def test_only_floating_tensors_require_gradients() -> None:
    with pytest.raises(InvalidArgumentError, match="int64"):
        Tensor(np.arange(3), requires_grad=True)


def test_deep_graphs_do_not_recurse() -> None:
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    assert float(x.grad) == pytest.approx(1.0)


def test_detach_and_array_protocol() -> None:
    x = Tensor(np.arange(3.0), requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad
    np.testing.assert_array_equal(np.asarray(d), [0.0, 2.0, 4.0])
    assert np.asarray(x) is x.data
    assert float(x.sum()) == 3.0
    assert len(x) == 3
    assert "requires_grad=True" in repr(x)
