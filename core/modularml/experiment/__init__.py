"""Experiments: run phases and phase groups against a model graph and keep their history."""

from modularml.experiment.experiment import Experiment, ExperimentRun

__all__ = ["Experiment", "ExperimentRun"]
