"""``FitResults``: results of a FitPhase (a single context holding the whole dataset)."""

from __future__ import annotations

from dataclasses import dataclass

from modularml.results.phase_results import PhaseResults

__all__ = ["FitResults"]


@dataclass(repr=False)
class FitResults(PhaseResults):
    """Results container for a single FitPhase execution (epoch 0, batch 0)."""
