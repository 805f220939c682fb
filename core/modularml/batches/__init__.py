"""Batch containers: what samplers produce and what the model graph consumes.

- :class:`BatchView`: a batch as row indices into a FeatureSet, one index array per role
  (negative = masked/padding), with per-sample weights; no data.
- :class:`Batch`: the gathered data of one batch: a :class:`SampleData` per role (in a
  :class:`RoleData`), plus per-sample role weights and masks.
- :class:`ExecutionContext`: one execution step (phase, epoch, batch): inputs per (head node,
  upstream reference), outputs per node, losses.

Rows are gathered only in :meth:`BatchView.materialize_batch` (one vectorised ``take`` per column
from the FeatureSet's cached numpy arrays), and arrays reach a framework through the backend
protocol once per batch, without a copy where the framework allows.
"""

from modularml.batches.batch import Batch
from modularml.batches.batch_view import BatchView
from modularml.batches.execution_context import ExecutionContext
from modularml.batches.sample_data import ROLE_DEFAULT, RoleData, SampleData

__all__ = ["ROLE_DEFAULT", "Batch", "BatchView", "ExecutionContext", "RoleData", "SampleData"]
