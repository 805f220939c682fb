"""Experiment phases: training, evaluation and fitting of a model graph, and their input bindings."""

from modularml.phases.base import ExperimentPhase
from modularml.phases.checkpointing import Checkpointing
from modularml.phases.eval_phase import EvalPhase
from modularml.phases.fit_phase import FitPhase
from modularml.phases.input_binding import InputBinding
from modularml.phases.phase_group import PhaseGroup
from modularml.phases.recording import ResultRecording
from modularml.phases.scheduling import BatchSchedulingPolicy, iter_schedule
from modularml.phases.train_phase import TrainPhase

__all__ = [
    "BatchSchedulingPolicy",
    "Checkpointing",
    "EvalPhase",
    "ExperimentPhase",
    "FitPhase",
    "InputBinding",
    "PhaseGroup",
    "ResultRecording",
    "TrainPhase",
    "iter_schedule",
]
