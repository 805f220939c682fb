"""Callbacks run by phases at phase, epoch and batch boundaries: evaluation, early stopping, metrics, loggers."""

from modularml.callbacks.early_stopping import EarlyStopping, EarlyStoppingResult
from modularml.callbacks.evaluation import Evaluation, EvaluationCallbackResult
from modularml.callbacks.experiment_callback import ExperimentCallback
from modularml.callbacks.loggers import CSVLogger, MetricsLogger
from modularml.callbacks.metrics import EvalLossMetric, EvaluationMetric, MetricCallback, MetricResult
from modularml.phases.callback import Callback, CallbackResult

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackResult",
    "EarlyStopping",
    "EarlyStoppingResult",
    "EvalLossMetric",
    "Evaluation",
    "EvaluationCallbackResult",
    "EvaluationMetric",
    "ExperimentCallback",
    "MetricCallback",
    "MetricsLogger",
    "MetricResult",
]
