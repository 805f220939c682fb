"""A small reverse-mode automatic differentiation on numpy arrays.

:class:`Tensor` wraps a numpy array. Operations on tensors that require gradients record how
each result was computed; :meth:`Tensor.backward` walks that record once, from the result back to
the leaves, and accumulates ``d result / d leaf`` into each leaf's :attr:`Tensor.grad`. Every
operation works on whole arrays (numpy broadcasting included); nothing loops over samples.

Inside :func:`no_grad` nothing is recorded. The switch is a :class:`contextvars.ContextVar`, so
threads and asyncio tasks each have their own.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from modularml.backends.padding import PAD_MODES, PadWidth, check_pad_mode, normalize_pad_width, pad_index_map
from modularml.errors import InvalidArgumentError

__all__ = [
    "Tensor",
    "as_tensor",
    "concat",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "pad",
    "stack",
]

_grad_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("modularml_numpy_grad_enabled", default=True)

#: Computes the gradients of an operation's inputs from the gradient of its output.
BackwardFn = Callable[[np.ndarray], Sequence[np.ndarray | None]]
_Scalar = (int, float)


def is_grad_enabled() -> bool:
    """Whether operations are recorded for gradients here (True outside :func:`no_grad`)."""
    return _grad_enabled.get()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """A scope in which operations record nothing: their results do not require gradients."""
    token = _grad_enabled.set(False)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """A scope in which operations are recorded, even inside :func:`no_grad`."""
    token = _grad_enabled.set(True)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape, strict=True)) if s == 1 and g != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Reduction axes as non-negative ints (all axes for ``None``)."""
    if axis is None:
        return tuple(range(ndim))
    raw = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % ndim if ndim else int(a) for a in raw))


class Tensor:
    """A numpy array that can record the operations applied to it, for gradients.

    Args:
        data: The values (anything ``np.asarray`` accepts; a tensor's array is shared).
        requires_grad: Record operations on this tensor and accumulate its gradient in
            :attr:`grad` (a leaf, such as a model parameter). Only floating tensors can.
        dtype: Cast the values first.

    Attributes:
        data (np.ndarray): The values.
        requires_grad (bool): Whether gradients flow to (or through) this tensor.
        grad (np.ndarray | None): The accumulated gradient of a leaf after :meth:`backward`.

    Supports ``+ - * / @ **`` and unary ``-`` with tensors, numpy arrays and Python scalars
    (broadcasting as numpy does), indexing, and the methods below. numpy arrays on the left of
    an operator defer to the tensor, so ``array * tensor`` is a tensor.
    """

    __slots__ = ("__weakref__", "_backward", "_parents", "data", "grad", "requires_grad")
    __array_ufunc__ = None  # numpy operators return NotImplemented, so Python calls our reflected ones
    __array_priority__ = 1000

    def __init__(self, data: ArrayLike, *, requires_grad: bool = False, dtype: DTypeLike | None = None) -> None:
        array = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=dtype)
        if requires_grad and array.dtype.kind not in "fc":
            raise InvalidArgumentError(
                f"Only floating tensors can require gradients; got dtype {array.dtype}. Cast with dtype='float32'."
            )
        self.data: np.ndarray = array
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardFn | None = None

    # ------------------------------------------------------------------ recording
    @staticmethod
    def _result(data: Any, parents: tuple[Tensor, ...], backward: BackwardFn) -> Tensor:
        out = Tensor(data)
        if _grad_enabled.get() and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
        return out

    @property
    def is_leaf(self) -> bool:
        """True for tensors not computed from tensors that require gradients (parameters, inputs)."""
        return self._backward is None

    def backward(self, grad: ArrayLike | None = None) -> None:
        """Accumulate the gradient of this tensor into :attr:`grad` of every leaf it depends on.

        Args:
            grad: The gradient of the final objective with respect to this tensor; defaults to 1
                for a tensor with one element.

        Raises:
            InvalidArgumentError: If this tensor records no operations (computed under
                :func:`no_grad`, or from nothing that requires gradients), or ``grad`` is missing
                for a tensor with more than one element.
        """
        if not self.requires_grad:
            raise InvalidArgumentError(
                "This tensor recorded no operations, so it has no gradient: it was computed under no_grad(), or "
                "from tensors that do not require gradients."
            )
        if grad is None:
            if self.data.size != 1:
                raise InvalidArgumentError(
                    f"backward() without a gradient needs a tensor with one element; this one has shape "
                    f"{self.data.shape}. Reduce it first (sum() or mean()), or pass grad=."
                )
            seed = np.ones_like(self.data)
        else:
            seed = np.broadcast_to(np.asarray(grad, dtype=self.data.dtype), self.data.shape)
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in visited)
        grads: dict[int, np.ndarray] = {id(self): seed}
        for node in reversed(order):  # outputs before the tensors they were computed from
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:
                g = np.asarray(g, dtype=node.data.dtype)
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for parent, parent_grad in zip(node._parents, node._backward(g), strict=False):
                if parent_grad is None or not parent.requires_grad:
                    continue
                parent_grad = _unbroadcast(np.asarray(parent_grad), parent.data.shape)
                key = id(parent)
                grads[key] = grads[key] + parent_grad if key in grads else parent_grad

    def detach(self) -> Tensor:
        """The same values (shared memory), with no link to recorded operations."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    # ------------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self.data.dtype

    def numpy(self) -> np.ndarray:
        """The values as a numpy array (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The single value of a one-element tensor, as a Python scalar."""
        return self.data.item()

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None and not copy:
            return self.data
        return np.array(self.data, dtype=dtype, copy=True if copy else None)

    def __float__(self) -> float:
        return float(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, threshold=20)}, dtype={self.data.dtype}{grad})"

    # ------------------------------------------------------------------ arithmetic
    @staticmethod
    def _operand(other: Any) -> tuple[Tensor | None, Any]:
        """(tensor or None for a Python scalar, raw value) of the other side of an operator."""
        if isinstance(other, Tensor):
            return other, other.data
        if isinstance(other, _Scalar) and not isinstance(other, bool):
            # a plain Python number keeps the tensor's dtype (np.float64 is a float subclass: unwrap it)
            return None, (float(other) if isinstance(other, float) else int(other))
        array = np.asarray(other)
        return Tensor(array), array

    def _binary(self, other: Any, forward: Callable, backward: Callable, *, reflected: bool = False) -> Tensor:
        tensor, raw = self._operand(other)
        a, b = (raw, self.data) if reflected else (self.data, raw)
        data = forward(a, b)

        def grads(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
            grad_a, grad_b = backward(g, a, b)
            return (grad_b, grad_a) if reflected else (grad_a, grad_b)

        parents = (self,) if tensor is None else (self, tensor)
        return self._result(data, parents, grads)

    def __add__(self, other: Any) -> Tensor:
        return self._binary(other, np.add, lambda g, a, b: (g, g))

    def __radd__(self, other: Any) -> Tensor:
        return self._binary(other, np.add, lambda g, a, b: (g, g), reflected=True)

    def __sub__(self, other: Any) -> Tensor:
        return self._binary(other, np.subtract, lambda g, a, b: (g, -g))

    def __rsub__(self, other: Any) -> Tensor:
        return self._binary(other, np.subtract, lambda g, a, b: (g, -g), reflected=True)

    def __mul__(self, other: Any) -> Tensor:
        return self._binary(other, np.multiply, lambda g, a, b: (g * b, g * a))

    def __rmul__(self, other: Any) -> Tensor:
        return self._binary(other, np.multiply, lambda g, a, b: (g * b, g * a), reflected=True)

    def __truediv__(self, other: Any) -> Tensor:
        return self._binary(other, np.true_divide, lambda g, a, b: (g / b, -g * a / (b * b)))

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._binary(other, np.true_divide, lambda g, a, b: (g / b, -g * a / (b * b)), reflected=True)

    def __matmul__(self, other: Any) -> Tensor:
        return self._binary(other, np.matmul, _matmul_backward)

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._binary(other, np.matmul, _matmul_backward, reflected=True)

    def __neg__(self) -> Tensor:
        return self._result(-self.data, (self,), lambda g: (-g,))

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor) or not isinstance(exponent, _Scalar):
            raise InvalidArgumentError(f"Tensor ** exponent takes a Python number as exponent; got {exponent!r}.")
        x = self.data
        return self._result(x**exponent, (self,), lambda g: (g * exponent * x ** (exponent - 1),))

    def square(self) -> Tensor:
        """Elementwise ``x ** 2``."""
        x = self.data
        return self._result(x * x, (self,), lambda g: (2 * g * x,))

    def abs(self) -> Tensor:
        """Elementwise ``|x|`` (gradient ``sign(x)``, 0 at 0)."""
        x = self.data
        return self._result(np.abs(x), (self,), lambda g: (g * np.sign(x),))

    def exp(self) -> Tensor:
        """Elementwise ``e ** x``."""
        out = np.exp(self.data)
        return self._result(out, (self,), lambda g: (g * out,))

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        x = self.data
        return self._result(np.log(x), (self,), lambda g: (g / x,))

    # ------------------------------------------------------------------ reductions and shapes
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes for ``None``), like ``np.sum``."""
        shape = self.data.shape
        axes = _axes(axis, self.data.ndim)
        data = np.sum(self.data, axis=axes, keepdims=keepdims)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            if not keepdims:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g, shape),)

        return self._result(data, (self,), backward)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Arithmetic mean over ``axis`` (all axes for ``None``), like ``np.mean`` (integers give floats)."""
        shape = self.data.shape
        axes = _axes(axis, self.data.ndim)
        data = np.mean(self.data, axis=axes, keepdims=keepdims)
        count = int(np.prod([shape[a] for a in axes])) if axes else 1

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            if not keepdims:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g / max(count, 1), shape),)

        return self._result(data, (self,), backward)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same values in ``shape`` (one axis may be -1); ``t.reshape(2, 3)`` or ``t.reshape((2, 3))``."""
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], Sequence) else shape
        original = self.data.shape
        return self._result(self.data.reshape(target), (self,), lambda g: (g.reshape(original),))

    def transpose(self, *axes: int) -> Tensor:
        """Permute the axes (reverse them when none are given), like ``np.transpose``."""
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], Sequence) else axes or None
        inverse = None if order is None else tuple(np.argsort(order))
        return self._result(np.transpose(self.data, order), (self,), lambda g: (np.transpose(g, inverse),))

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return self.transpose()

    def astype(self, dtype: DTypeLike) -> Tensor:
        """A copy cast to ``dtype``; gradients are cast back."""
        original = self.data.dtype
        return self._result(self.data.astype(dtype), (self,), lambda g: (g.astype(original),))

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        shape, dtype = self.data.shape, self.data.dtype

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            full = np.zeros(shape, dtype=np.result_type(dtype, g.dtype))
            np.add.at(full, index, g)
            return (full,)

        return self._result(self.data[index], (self,), backward)


def _matmul_backward(g: np.ndarray, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``a @ b`` for 1-D, 2-D and batched operands (numpy's matmul rules)."""
    a, b = np.asarray(a), np.asarray(b)
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    g2 = np.asarray(g)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    grad_a = g2 @ np.swapaxes(b2, -1, -2)
    grad_b = np.swapaxes(a2, -1, -2) @ g2
    if a.ndim == 1:
        grad_a = grad_a[..., 0, :]
    if b.ndim == 1:
        grad_b = grad_b[..., 0]
    return _unbroadcast(grad_a, a.shape), _unbroadcast(grad_b, b.shape)


def as_tensor(value: Any, dtype: DTypeLike | None = None) -> Tensor:
    """``value`` if it is a tensor (and of ``dtype``), else a constant tensor of it."""
    if isinstance(value, Tensor):
        return value if dtype is None or value.dtype == np.dtype(dtype) else value.astype(dtype)
    return Tensor(value, dtype=dtype)


def concat(values: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``np.concatenate``); gradients flow to every input."""
    tensors = [as_tensor(v) for v in values]
    if not tensors:
        raise InvalidArgumentError("concat needs at least one tensor.")
    data = np.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.data.shape[axis] for t in tensors])[:-1]
    return Tensor._result(data, tuple(tensors), lambda g: np.split(g, bounds, axis=axis))


def stack(values: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along a new axis (``np.stack``); gradients flow to every input."""
    tensors = [as_tensor(v) for v in values]
    if not tensors:
        raise InvalidArgumentError("stack needs at least one tensor.")
    data = np.stack([t.data for t in tensors], axis=axis)
    return Tensor._result(data, tuple(tensors), lambda g: list(np.moveaxis(g, axis, 0)))


def pad(value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Tensor:
    """Pad like ``np.pad`` (modes ``constant``, ``reflect``, ``replicate``, ``circular``); differentiable.

    Raises:
        ValueError: For an unknown mode, bad widths, or a non-constant mode on an empty axis.
    """
    check_pad_mode(mode)
    tensor = as_tensor(value)
    widths = normalize_pad_width(pad_width, tensor.ndim)
    if mode == "constant":
        data = np.pad(tensor.data, widths, mode="constant", constant_values=constant_value)
        inner = tuple(slice(before, before + size) for (before, _), size in zip(widths, tensor.shape, strict=True))
        return Tensor._result(data, (tensor,), lambda g: (g[inner],))
    maps = []
    for axis, (before, after) in enumerate(widths):
        if before or after:
            maps.append((axis, pad_index_map(tensor.shape[axis], before, after, mode)))
    data = np.pad(tensor.data, widths, mode=PAD_MODES[mode]) if maps else tensor.data.copy()
    shape = tensor.shape

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        sizes = list(g.shape)
        for axis, index in reversed(maps):  # undo the gathers, last axis first
            sizes[axis] = shape[axis]
            folded = np.zeros(sizes, dtype=g.dtype)
            np.add.at(folded, (slice(None),) * axis + (index,), g)
            g = folded
        return (g,)

    return Tensor._result(data, (tensor,), backward)
