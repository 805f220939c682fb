"""Losses of the numpy backend: per-sample mean squared and mean absolute error."""

from __future__ import annotations

from typing import Any

from modularml.errors import InvalidArgumentError
from modularml_numpy.autograd import Tensor, as_tensor

__all__ = ["MAELoss", "MSELoss"]

REDUCTIONS = ("none", "mean", "sum")


class _PerSampleLoss:
    """Base of losses that average an elementwise error over every non-batch axis of each sample.

    Args:
        reduction: ``"none"`` (default) returns one value per sample, shape ``(batch,)``;
            ``"mean"`` and ``"sum"`` reduce those to a scalar.

    Raises:
        InvalidArgumentError: For an unknown reduction.
    """

    def __init__(self, reduction: str = "none") -> None:
        if reduction not in REDUCTIONS:
            raise InvalidArgumentError(
                f"{type(self).__name__}: unknown reduction {reduction!r}; expected one of {list(REDUCTIONS)}."
            )
        self.reduction = reduction

    def _elementwise(self, diff: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, outputs: Any, targets: Any) -> Tensor:
        """The loss of ``outputs`` against ``targets`` (tensors or arrays, batch axis first).

        A target with as many elements as the outputs but another shape (``(B,)`` against
        ``(B, 1)``) is reshaped to the outputs' shape first, never broadcast.

        Raises:
            InvalidArgumentError: If the shapes differ in element count.
        """
        outputs, targets = as_tensor(outputs), as_tensor(targets)
        if targets.shape != outputs.shape:
            if targets.size != outputs.size:
                raise InvalidArgumentError(
                    f"{type(self).__name__}: outputs of shape {outputs.shape} and targets of shape {targets.shape} "
                    "do not match; give targets with one value per output element."
                )
            targets = targets.reshape(outputs.shape)
        errors = self._elementwise(outputs - targets)
        if errors.ndim > 1:
            errors = errors.mean(axis=tuple(range(1, errors.ndim)))
        if self.reduction == "mean":
            return errors.mean()
        if self.reduction == "sum":
            return errors.sum()
        return errors

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(_PerSampleLoss):
    """Mean squared error per sample: ``mean((outputs - targets) ** 2)`` over the non-batch axes."""

    def _elementwise(self, diff: Tensor) -> Tensor:
        return diff.square()


class MAELoss(_PerSampleLoss):
    """Mean absolute error per sample: ``mean(|outputs - targets|)`` over the non-batch axes."""

    def _elementwise(self, diff: Tensor) -> Tensor:
        return diff.abs()
