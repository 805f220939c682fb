"""``LinearModel``: the numpy backend's affine map, trained with its autograd."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends import get_backend
from modularml.errors import InvalidArgumentError
from modularml.models import ShapedModel
from modularml_numpy.autograd import Tensor, as_tensor

__all__ = ["LinearModel"]


class LinearModel(ShapedModel):
    """A linear (affine) map ``y = flatten(x) @ W + b``, reshaped to ``output_shape``.

    Each sample's input is flattened, so any per-sample input shape works. Shapes omitted here
    are taken from :meth:`build` (ModularML infers them from the data when the model sits in a
    graph); ``output_shape`` must be known by then. Weights are drawn from the numpy backend's
    generator (seed it with ``mml.get_backend("numpy").seed(n)``), scaled by
    ``1 / sqrt(in_features)``; the bias starts at zero.

    Args:
        input_shape: Per-sample input shape (without the batch axis), or ``None`` to infer it.
        output_shape: Per-sample output shape, or ``None`` to take it from :meth:`build`.
        bias: Whether to learn a bias.
        dtype: Floating dtype of the weights.

    Example:
        >>> model = LinearModel(output_shape=(1,))
        >>> model.build(input_shape=(3,))
        >>> y = model(x)  # x: (batch, 3) -> y: (batch, 1)
    """

    def __init__(
        self,
        input_shape: int | Sequence[int] | None = None,
        output_shape: int | Sequence[int] | None = None,
        *,
        bias: bool = True,
        dtype: str = "float32",
    ) -> None:
        super().__init__(backend="numpy", input_shape=input_shape, output_shape=output_shape, bias=bias, dtype=dtype)
        if np.dtype(dtype).kind != "f":
            raise InvalidArgumentError(f"LinearModel weights are floating; got dtype={dtype!r}.")
        self._declare_shapes(input_shape, output_shape)
        self._bias = bool(bias)
        self._dtype: DTypeLike = np.dtype(dtype)
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None

    def build(
        self,
        input_shape: tuple[int, ...] | None = None,
        output_shape: tuple[int, ...] | None = None,
        *,
        force: bool = False,
    ) -> None:
        """Create the weights for the given per-sample shapes.

        Building a built model with the same (or no) shapes changes nothing.

        Args:
            input_shape: Per-sample input shape; must agree with the constructor's if both are given.
            output_shape: Per-sample output shape; must agree with the constructor's if both are given.
            force: Draw new weights even if the model is built (shapes may then change).

        Raises:
            InvalidArgumentError: If a shape is missing, disagrees with the declared one, or
                differs from the built one without ``force``.
        """
        shapes = self._build_shapes(input_shape, output_shape, force=force)
        if shapes is None:
            return
        self._input_shape, self._output_shape = shapes
        n_in, n_out = math.prod(self._input_shape), math.prod(self._output_shape)
        draws = get_backend("numpy").random_normal((n_in, n_out), dtype=self._dtype)
        self.weight = Tensor(draws.data / np.sqrt(max(n_in, 1)), requires_grad=True, dtype=self._dtype)
        self.bias = Tensor(np.zeros(n_out, dtype=self._dtype), requires_grad=True) if self._bias else None
        self._built = True

    def parameters(self) -> list[Tensor]:
        """The trainable tensors: ``[weight, bias]`` (or ``[weight]`` without a bias); empty before build."""
        return [p for p in (self.weight, self.bias) if p is not None]

    def forward(self, x: Any, **kwargs: Any) -> Tensor:
        """Apply the model to a batch ``x`` of shape ``(batch, *input_shape)``.

        An unbuilt model with a known ``output_shape`` is built from ``x`` first.

        Returns:
            Tensor: Outputs of shape ``(batch, *output_shape)``.

        Raises:
            InvalidArgumentError: If ``x`` does not have the input shape, or the model cannot be built.
        """
        if kwargs:
            raise InvalidArgumentError(f"LinearModel.forward takes no keyword arguments; got {sorted(kwargs)}.")
        x = as_tensor(x)
        if x.ndim < 1:
            raise InvalidArgumentError(f"LinearModel expects a batch (batch axis first); got a scalar {x!r}.")
        if not self._built:
            self.build(input_shape=x.shape[1:])
        if tuple(x.shape[1:]) != self._input_shape and math.prod(x.shape[1:]) != math.prod(self._input_shape):
            raise InvalidArgumentError(
                f"LinearModel expects inputs of per-sample shape {self._input_shape}; got a batch of shape {x.shape}."
            )
        if x.dtype != self._dtype:
            x = x.astype(self._dtype)
        out = x.reshape((x.shape[0], -1)) @ self.weight
        if self.bias is not None:
            out = out + self.bias
        return out.reshape((x.shape[0], *self._output_shape))

    __call__ = forward

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of the weights: ``{"weight": (in, out), "bias": (out,)}``; empty before build."""
        weights = {}
        if self.weight is not None:
            weights["weight"] = self.weight.data.copy()
        if self.bias is not None:
            weights["bias"] = self.bias.data.copy()
        return weights

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        """Write weights from :meth:`get_weights` into the built model, in place.

        In place: optimizers built over :meth:`parameters` keep working.

        Raises:
            InvalidArgumentError: If the model is not built, a weight is missing or unexpected, or
                a shape differs.
        """
        if not self._built:
            raise InvalidArgumentError("LinearModel is not built; build it (or use set_state) before set_weights().")
        expected = {"weight": self.weight, **({"bias": self.bias} if self.bias is not None else {})}
        if set(weights) != set(expected):
            raise InvalidArgumentError(
                f"LinearModel weights are {sorted(expected)}; got {sorted(weights)}. Use the dict from get_weights()."
            )
        arrays = {name: np.asarray(weights[name]) for name in expected}
        for name, param in expected.items():
            if arrays[name].shape != param.shape:
                raise InvalidArgumentError(
                    f"LinearModel weight {name!r} has shape {param.shape}; got {arrays[name].shape}."
                )
        for name, param in expected.items():
            param.data[...] = arrays[name]
