"""Optimizers of the numpy backend: SGD (with momentum) and Adam, over autograd tensors.

Each keeps its state per parameter, in the order of the parameter list it was built over, as
numpy arrays, so :meth:`get_state` / :meth:`set_state` round-trip through ModularML files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml_numpy.autograd import Tensor

__all__ = ["SGD", "Adam", "NumpyOptimizer"]


class NumpyOptimizer:
    """Base of the numpy optimizers: holds the parameters, their gradients and the step count.

    Args:
        params: The tensors to optimize; each must require gradients.

    Raises:
        InvalidArgumentError: If ``params`` is empty.
        InvalidTypeError: If a parameter is not a tensor that requires gradients.
    """

    #: Names of the per-parameter state buffers (each a list of arrays or ``None``).
    buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor]) -> None:
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise InvalidArgumentError(f"{type(self).__name__} needs at least one parameter to optimize; got none.")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise InvalidTypeError(
                    f"{type(self).__name__}: parameter {i} is {type(p).__name__}, not a tensor that requires "
                    "gradients; pass the model's parameters (backend.model_parameters(model))."
                )
        self.step_count = 0
        self.state: dict[str, list[np.ndarray | None]] = {name: [None] * len(self.params) for name in self.buffers}

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.params:
            p.grad = None

    def step(self, grads: Sequence[Any] | None = None) -> None:
        """Update every parameter that has a gradient, once.

        Args:
            grads: Gradients in parameter order, instead of the ones stored on the parameters.

        Raises:
            InvalidArgumentError: If ``grads`` has the wrong length.
        """
        if grads is not None and len(grads) != len(self.params):
            raise InvalidArgumentError(
                f"{type(self).__name__}.step got {len(grads)} gradients for {len(self.params)} parameters."
            )
        self.step_count += 1
        for i, p in enumerate(self.params):
            g = p.grad if grads is None else grads[i]
            if g is None:
                continue
            g = np.asarray(g.data if isinstance(g, Tensor) else g, dtype=p.data.dtype)
            p.data -= self._update(i, p.data, g).astype(p.data.dtype, copy=False)

    def _update(self, index: int, value: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        """The step count and per-parameter buffers (copies), as JSON values and numpy arrays."""
        return {
            "step": self.step_count,
            **{name: [None if b is None else b.copy() for b in self.state[name]] for name in self.buffers},
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`get_state` returned, for like-shaped parameters in the same order.

        Raises:
            InvalidArgumentError: If the state is malformed or does not fit the parameters.
        """
        if not isinstance(state, Mapping) or not all(k in state for k in ("step", *self.buffers)):
            raise InvalidArgumentError(
                f"A {type(self).__name__} state has the keys {['step', *self.buffers]}; got {state!r:.200}."
            )
        restored: dict[str, list[np.ndarray | None]] = {}
        for name in self.buffers:
            values = list(state[name])
            if len(values) != len(self.params):
                raise InvalidArgumentError(
                    f"The {type(self).__name__} state has {len(values)} {name!r} buffers but the optimizer has "
                    f"{len(self.params)} parameters; it was saved for another model."
                )
            restored[name] = []
            for i, (value, p) in enumerate(zip(values, self.params, strict=True)):
                if value is None:
                    restored[name].append(None)
                    continue
                array = np.array(value, dtype=p.data.dtype)
                if array.shape != p.data.shape:
                    raise InvalidArgumentError(
                        f"The {type(self).__name__} state's {name!r} buffer {i} has shape {array.shape}, but "
                        f"parameter {i} has shape {p.data.shape}; it was saved for another model."
                    )
                restored[name].append(array)
        self.step_count = int(state["step"])
        self.state = restored


class SGD(NumpyOptimizer):
    """Stochastic gradient descent, with optional momentum and weight decay (as ``torch.optim.SGD``).

    Args:
        params: The tensors to optimize.
        lr: Learning rate.
        momentum: Momentum factor (0 disables it).
        weight_decay: L2 penalty added to the gradient.
    """

    buffers = ("momentum_buffer",)

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params)
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise InvalidArgumentError(
                f"SGD needs lr > 0, momentum >= 0 and weight_decay >= 0; got lr={lr}, momentum={momentum}, "
                f"weight_decay={weight_decay}."
            )
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)

    def _update(self, index: int, value: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        if self.momentum:
            buffer = self.state["momentum_buffer"][index]
            buffer = grad.copy() if buffer is None else self.momentum * buffer + grad
            self.state["momentum_buffer"][index] = buffer
            grad = buffer
        return self.lr * grad


class Adam(NumpyOptimizer):
    """Adam (Kingma and Ba), as ``torch.optim.Adam``.

    Args:
        params: The tensors to optimize.
        lr: Learning rate.
        betas: Decay rates of the first and second moment estimates.
        eps: Added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient.
    """

    buffers = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        beta1, beta2 = betas
        if lr <= 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1) or eps <= 0:
            raise InvalidArgumentError(
                f"Adam needs lr > 0, 0 <= betas < 1 and eps > 0; got lr={lr}, betas={betas}, eps={eps}."
            )
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), (float(beta1), float(beta2)), eps, weight_decay

    def _update(self, index: int, value: np.ndarray, grad: np.ndarray) -> np.ndarray:
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * value
        m = self.state["exp_avg"][index]
        v = self.state["exp_avg_sq"][index]
        m = (1 - beta1) * grad if m is None else beta1 * m + (1 - beta1) * grad
        v = (1 - beta2) * grad * grad if v is None else beta2 * v + (1 - beta2) * grad * grad
        self.state["exp_avg"][index], self.state["exp_avg_sq"][index] = m, v
        m_hat = m / (1 - beta1**self.step_count)
        v_hat = v / (1 - beta2**self.step_count)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
