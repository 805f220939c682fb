"""Results of phases: execution contexts per epoch and batch, metrics, and the queries over them."""

from modularml.results.axis_series import AxisSeries
from modularml.results.cv_results import CVResults
from modularml.results.eval_results import EvalResults
from modularml.results.fit_results import FitResults
from modularml.results.metric_store import MetricEntry, MetricStore
from modularml.results.phase_group_results import PhaseGroupResults
from modularml.results.phase_results import PhaseResults
from modularml.results.train_results import TrainResults

__all__ = [
    "CVResults",
    "AxisSeries",
    "EvalResults",
    "FitResults",
    "MetricEntry",
    "MetricStore",
    "PhaseGroupResults",
    "PhaseResults",
    "TrainResults",
]
