"""``EvalResults``: results of an EvalPhase (one epoch, one context per chunk)."""

from __future__ import annotations

from dataclasses import dataclass

from modularml.results.phase_results import PhaseResults

__all__ = ["EvalResults"]


@dataclass(repr=False)
class EvalResults(PhaseResults):
    """Results container for a single forward-pass evaluation phase (epoch 0, one batch per chunk).

    Use :meth:`stacked_tensors` for all predictions or targets of a node, :meth:`aggregated_losses`
    for the losses over all chunks and :meth:`source_view` for the evaluated samples.
    """
