"""Losses of the TensorFlow backend: ``keras.losses`` by name, and the torch backend's short names.

Every loss is called as ModularML calls losses, ``loss(outputs, targets)`` (predictions first):
Keras losses (called ``loss(y_true, y_pred)``) are wrapped in :class:`KerasLoss`, which swaps the
arguments and also takes ``y_pred=``/``y_true=`` keywords. The short names (:data:`LOSS_NAMES`) mean
what they mean for the torch backend: ``mse``, ``mae``/``l1`` and ``huber`` are Keras' classes (the
same math); ``smooth_l1``, ``cross_entropy``, ``bce``, ``bce_with_logits``, ``nll``, ``kl_div``,
``cosine_embedding``, ``triplet_margin`` and ``margin_ranking`` are the classes below, with torch's
arguments, defaults and semantics (class scores on the last axis, Keras' layout). Every other
``keras.losses`` class is found by its own name (``"LogCosh"``, ``"log_cosh"``).

With ``reduction="none"`` (ModularML's default) the values keep the batch axis first: per element
for the classes below, per sample for Keras' (the mean over the last axis).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from modularml.errors import InvalidArgumentError
from modularml_tf.plugin import LOSS_NAMES

__all__ = [
    "LOSS_NAMES",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CosineEmbeddingLoss",
    "CrossEntropyLoss",
    "KLDivLoss",
    "KerasLoss",
    "MarginRankingLoss",
    "NLLLoss",
    "SmoothL1Loss",
    "TripletMarginLoss",
    "framework_losses",
    "keras_reduction",
]

_REDUCTIONS = ("none", "mean", "sum")


def framework_losses() -> dict[str, type]:
    """Every loss class of ``keras.losses``, by class name (``"MeanSquaredError"``, ``"LogCosh"``)."""
    found = {}
    for name in dir(keras.losses):
        obj = getattr(keras.losses, name)
        if inspect.isclass(obj) and issubclass(obj, keras.losses.Loss) and obj is not keras.losses.Loss:
            found[name] = obj
    return found


def keras_reduction(reduction: str | None) -> str | None:
    """Keras' spelling of a ModularML reduction: ``"none"`` is ``None``, ``"mean"`` is ``"sum_over_batch_size"``."""
    if reduction is None or reduction == "none":
        return None
    if reduction == "mean":
        return "sum_over_batch_size"
    return reduction


def is_keras_loss(spec: Any) -> bool:
    """Whether ``spec`` is a Keras loss class or function (called ``loss(y_true, y_pred)``)."""
    if inspect.isclass(spec):
        return issubclass(spec, keras.losses.Loss) and not issubclass(spec, _TorchStyleLoss)
    if isinstance(spec, keras.losses.Loss):
        return True
    return callable(spec) and str(getattr(spec, "__module__", "")).split(".")[0] == "keras"


class KerasLoss:
    """A Keras loss called with predictions first: ``KerasLoss(loss)(outputs, targets)`` is ``loss(targets, outputs)``.

    Args:
        loss: A ``keras.losses.Loss`` instance or a Keras loss function.
    """

    def __init__(self, loss: Callable[..., Any]) -> None:
        self.loss = loss

    def __call__(
        self,
        outputs: Any = None,
        targets: Any = None,
        sample_weight: Any = None,
        *,
        y_pred: Any = None,
        y_true: Any = None,
    ) -> Any:
        """The loss of ``outputs`` (or ``y_pred``) against ``targets`` (or ``y_true``).

        Raises:
            InvalidArgumentError: If the predictions or the targets are missing, or given twice.
        """
        if (outputs is None) == (y_pred is None) or (targets is None) == (y_true is None):
            raise InvalidArgumentError(
                "A Keras loss takes the predictions (outputs= or y_pred=) and the targets (targets= or y_true=), "
                "each once."
            )
        predictions = outputs if outputs is not None else y_pred
        truth = targets if targets is not None else y_true
        if sample_weight is None:
            return self.loss(truth, predictions)
        return self.loss(truth, predictions, sample_weight=sample_weight)

    def __repr__(self) -> str:
        return f"KerasLoss({self.loss!r})"


# -- the torch backend's short names, as TensorFlow classes ------------------------------------------------
class _TorchStyleLoss:
    """Base of the losses with torch's semantics: per-element values, reduced by ``reduction``."""

    def __init__(self, reduction: str = "none") -> None:
        if reduction not in _REDUCTIONS:
            raise InvalidArgumentError(f"reduction is one of {_REDUCTIONS}; got {reduction!r}.")
        self.reduction = reduction

    def _reduce(self, values: tf.Tensor) -> tf.Tensor:
        if self.reduction == "mean":
            return tf.reduce_mean(values)
        if self.reduction == "sum":
            return tf.reduce_sum(values)
        return values

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _pair(outputs: Any, targets: Any) -> tuple[tf.Tensor, tf.Tensor]:
    outputs = tf.convert_to_tensor(outputs)
    targets = tf.cast(tf.convert_to_tensor(targets), outputs.dtype)
    return outputs, targets


class SmoothL1Loss(_TorchStyleLoss):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``d = outputs - targets``).

    Args:
        beta: Where the quadratic part ends (> 0; with ``beta=1`` it is Huber with ``delta=1``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "none") -> None:
        super().__init__(reduction)
        if float(beta) <= 0:
            raise InvalidArgumentError(f"SmoothL1Loss needs beta > 0; got {beta}.")
        self.beta = float(beta)

    def __call__(self, outputs: Any, targets: Any) -> tf.Tensor:
        """Per-element values (reduced by ``reduction``)."""
        outputs, targets = _pair(outputs, targets)
        diff = tf.abs(outputs - targets)
        values = tf.where(diff < self.beta, 0.5 * tf.square(diff) / self.beta, diff - 0.5 * self.beta)
        return self._reduce(values)


class BCELoss(_TorchStyleLoss):
    """Binary cross entropy of probabilities (``outputs`` in [0, 1]); logs are clamped at -100 as torch does."""

    def __call__(self, outputs: Any, targets: Any) -> tf.Tensor:
        """Per-element values (reduced by ``reduction``)."""
        outputs, targets = _pair(outputs, targets)
        log_p = tf.maximum(tf.math.log(outputs), -100.0)
        log_q = tf.maximum(tf.math.log(1.0 - outputs), -100.0)
        return self._reduce(-(targets * log_p + (1.0 - targets) * log_q))


class BCEWithLogitsLoss(_TorchStyleLoss):
    """Binary cross entropy of logits (``tf.nn.sigmoid_cross_entropy_with_logits``).

    Args:
        pos_weight: Weight of the positive term (a float or per-class values), or None.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, pos_weight: Any = None, reduction: str = "none") -> None:
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def __call__(self, outputs: Any, targets: Any) -> tf.Tensor:
        """Per-element values (reduced by ``reduction``)."""
        outputs, targets = _pair(outputs, targets)
        if self.pos_weight is None:
            values = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=outputs)
        else:
            weight = tf.cast(self.pos_weight, outputs.dtype)
            values = tf.nn.weighted_cross_entropy_with_logits(labels=targets, logits=outputs, pos_weight=weight)
        return self._reduce(values)


def _class_targets(outputs: tf.Tensor, targets: Any) -> tuple[tf.Tensor, bool]:
    """``targets`` as class indices (``True``) or, with the outputs' shape, as class probabilities (``False``)."""
    targets = tf.convert_to_tensor(targets)
    if targets.shape.rank == outputs.shape.rank and targets.dtype.is_floating:
        return tf.cast(targets, outputs.dtype), False
    if targets.shape.rank == outputs.shape.rank and targets.shape[-1] == 1:
        targets = tf.squeeze(targets, axis=-1)
    return tf.cast(targets, tf.int64), True


class CrossEntropyLoss(_TorchStyleLoss):
    """Cross entropy of logits (classes on the last axis) against class indices or class probabilities.

    Per-sample values: shape ``outputs.shape[:-1]``.

    Args:
        label_smoothing: Mass moved from the target class to all classes uniformly (0 to 1).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "none") -> None:
        super().__init__(reduction)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise InvalidArgumentError(f"CrossEntropyLoss needs 0 <= label_smoothing <= 1; got {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)

    def __call__(self, outputs: Any, targets: Any) -> tf.Tensor:
        """Per-sample values (reduced by ``reduction``)."""
        outputs = tf.convert_to_tensor(outputs)
        labels, sparse = _class_targets(outputs, targets)
        classes = tf.shape(outputs)[-1]
        probabilities = tf.one_hot(labels, classes, dtype=outputs.dtype) if sparse else labels
        if self.label_smoothing:
            uniform = 1.0 / tf.cast(classes, outputs.dtype)
            probabilities = probabilities * (1.0 - self.label_smoothing) + self.label_smoothing * uniform
        values = tf.nn.softmax_cross_entropy_with_logits(labels=probabilities, logits=outputs)
        return self._reduce(values)


class NLLLoss(_TorchStyleLoss):
    """Negative log likelihood: ``-outputs[..., target]`` for log-probabilities (classes on the last axis)."""

    def __call__(self, outputs: Any, targets: Any) -> tf.Tensor:
        """Per-sample values (reduced by ``reduction``)."""
        outputs = tf.convert_to_tensor(outputs)
        labels, sparse = _class_targets(outputs, targets)
        if not sparse:
            raise InvalidArgumentError("NLLLoss takes class indices as targets; got class probabilities.")
        picked = tf.gather(outputs, labels, axis=-1, batch_dims=labels.shape.rank)
        return self._reduce(-picked)


class KLDivLoss(_TorchStyleLoss):
    """Kullback-Leibler divergence of ``targets`` from log-probabilities ``outputs``, as ``torch.nn.KLDivLoss``.

    Per element: ``targets * (log(targets) - outputs)`` (0 where ``targets`` is 0); with
    ``log_target=True`` the targets are log-probabilities too. ``reduction="batchmean"`` divides the
    sum by the batch size.

    Args:
        log_target: Whether ``targets`` are log-probabilities.
        reduction: ``"none"``, ``"mean"``, ``"sum"`` or ``"batchmean"``.
    """

    def __init__(self, log_target: bool = False, reduction: str = "none") -> None:
        if reduction == "batchmean":
            self.reduction = reduction
        else:
            super().__init__(reduction)
        self.log_target = bool(log_target)

    def __call__(self, outputs: Any, targets: Any) -> tf.Tensor:
        """Per-element values (reduced by ``reduction``)."""
        outputs, targets = _pair(outputs, targets)
        if self.log_target:
            values = tf.exp(targets) * (targets - outputs)
        else:
            values = tf.math.xlogy(targets, targets) - targets * outputs
        if self.reduction == "batchmean":
            return tf.reduce_sum(values) / tf.cast(tf.shape(values)[0], values.dtype)
        return self._reduce(values)


class CosineEmbeddingLoss(_TorchStyleLoss):
    """``1 - cos(x1, x2)`` where ``y == 1``, ``max(0, cos(x1, x2) - margin)`` where ``y == -1``; per sample.

    Args:
        margin: Margin for dissimilar pairs (-1 to 1).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, margin: float = 0.0, reduction: str = "none") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def __call__(self, x1: Any, x2: Any, y: Any) -> tf.Tensor:
        """Per-sample values (reduced by ``reduction``)."""
        x1, x2 = _pair(x1, x2)
        y = tf.reshape(tf.cast(y, x1.dtype), [-1])
        eps = tf.constant(1e-8, x1.dtype)
        norms = tf.sqrt(tf.reduce_sum(tf.square(x1), -1) * tf.reduce_sum(tf.square(x2), -1))
        cos = tf.reduce_sum(x1 * x2, -1) / tf.maximum(norms, eps)
        values = tf.where(y > 0, 1.0 - cos, tf.maximum(0.0, cos - self.margin))
        return self._reduce(values)


class TripletMarginLoss(_TorchStyleLoss):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with the p-norm distance ``d(x, y) = ||x - y + eps||_p``; per sample.

    Args:
        margin: The margin.
        p: The norm's degree.
        eps: Added to the differences, as torch does.
        swap: Use ``min(d(a, n), d(p, n))`` as the negative distance.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(
        self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False, reduction: str = "none"
    ) -> None:
        super().__init__(reduction)
        self.margin, self.p, self.eps, self.swap = float(margin), float(p), float(eps), bool(swap)

    def _distance(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return tf.norm(a - b + self.eps, ord=self.p, axis=-1)

    def __call__(self, anchor: Any, positive: Any, negative: Any) -> tf.Tensor:
        """Per-sample values (reduced by ``reduction``)."""
        anchor, positive = _pair(anchor, positive)
        negative = tf.cast(negative, anchor.dtype)
        d_pos, d_neg = self._distance(anchor, positive), self._distance(anchor, negative)
        if self.swap:
            d_neg = tf.minimum(d_neg, self._distance(positive, negative))
        return self._reduce(tf.maximum(d_pos - d_neg + self.margin, 0.0))


class MarginRankingLoss(_TorchStyleLoss):
    """``max(0, -y * (x1 - x2) + margin)``, per element.

    Args:
        margin: The margin.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    def __init__(self, margin: float = 0.0, reduction: str = "none") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def __call__(self, x1: Any, x2: Any, y: Any) -> tf.Tensor:
        """Per-element values (reduced by ``reduction``)."""
        x1, x2 = _pair(x1, x2)
        y = tf.cast(y, x1.dtype)
        return self._reduce(tf.maximum(0.0, -y * (x1 - x2) + self.margin))


#: Losses whose ``"mean"`` is the mean of every element of their ``"none"`` values (every sample has
#: as many), so that a fused, compiled mean stands in for the unreduced values when weights are all 1.
ELEMENTWISE_MEAN: frozenset[Any] = frozenset(
    {
        keras.losses.MeanSquaredError,
        keras.losses.MeanAbsoluteError,
        keras.losses.Huber,
        keras.losses.LogCosh,
        SmoothL1Loss,
        BCELoss,
        BCEWithLogitsLoss,
    }
)
