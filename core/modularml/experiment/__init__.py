"""Experiments: run phases and phase groups against a model graph, keep their history, cross-validate."""

from modularml.experiment.cross_validation import CrossValidation, CVBinding
from modularml.experiment.experiment import Experiment, ExperimentRun

__all__ = ["CVBinding", "CrossValidation", "Experiment", "ExperimentRun"]
