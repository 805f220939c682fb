"""Results as pandas DataFrames: the samples a node produced, one row each (``stacked_tensors(fmt="pandas")``).

A row is one sample of one recorded step: where it came from (``fold`` when the phase ran in a
cross-validation fold, ``epoch``, ``batch``, ``sample_uuids``), then the values of the domain asked
for. Predictions (``outputs``) come with their targets next to them, and outputs and targets with
the sample's tags, read from the source FeatureSet by sample UUID (so every tag is there, even
those the node does not read). Columns are named ``domain.key`` after the FeatureSet's keys
(``outputs.soh``, ``targets.soh``, ``tags.cell_id``); a value with several elements per sample
(a curve) is one column of arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.batches.tensors import concat_values, to_numpy
from modularml.data.formats import import_pandas
from modularml.data.schema import parse_column_name

if TYPE_CHECKING:
    from modularml.data import FeatureSet
    from modularml.data.references import FeatureSetReference
    from modularml.nodes import GraphNode
    from modularml.results.phase_results import PhaseResults

__all__ = ["stacked_frame"]


def _cells(array: np.ndarray) -> Any:
    """A column's values: the array itself for one value per sample, else one array per sample."""
    if array.ndim == 1:
        return array
    column = np.empty(len(array), dtype=object)
    column[:] = list(array)
    return column


def _split_columns(prefix: str, array: np.ndarray, keys: Sequence[str]) -> dict[str, Any]:
    """``array`` ``(N, ...)`` as columns ``prefix.key``: one per key along axis 1, or one for a single key."""
    if keys and array.ndim >= 2 and array.shape[1] == len(keys) and (len(keys) > 1 or array.ndim == 2):
        return {f"{prefix}.{key}": _cells(array[:, i]) for i, key in enumerate(keys)}
    if len(keys) == 1:
        return {f"{prefix}.{keys[0]}": _cells(array)}
    if array.ndim == 2 and array.shape[1] == 1:
        return {prefix: array[:, 0]}
    return {prefix: _cells(array)}


def _source(refs: Sequence[FeatureSetReference]) -> tuple[FeatureSet | None, list[str], list[str]]:
    """The one FeatureSet of ``refs`` (None when there are several), its target keys and tag keys as read."""
    if not refs or len({ref.resolve_featureset().node_id for ref in refs}) != 1:
        return None, [], []
    ref = refs[0]
    fs = ref.resolve_featureset()
    targets = [parse_column_name(n)[1] for n in ref.targets] if ref.targets else fs.get_target_keys()
    tags = [parse_column_name(n)[1] for n in ref.tags] if ref.tags else fs.get_tag_keys()
    return fs, targets, tags


def _tags_by_uuid(fs: FeatureSet, uuids: np.ndarray) -> dict[str, Any]:
    """Every tag column of ``fs`` for the samples ``uuids`` (missing for masked rows and unknown UUIDs)."""
    pd = import_pandas()
    keys = fs.get_tag_keys()
    if not keys:
        return {}
    known = np.asarray(fs.get_sample_uuids()).astype(str)
    order = np.argsort(known, kind="stable")
    position = np.minimum(np.searchsorted(known, uuids, sorter=order), len(known) - 1)
    rows = order[position]
    found = known[rows] == uuids
    columns: dict[str, Any] = {}
    for key, values in fs.get_tags(fmt="dict_numpy", keys=keys).items():
        taken = _cells(np.asarray(values)[rows])
        columns[f"tags.{key}"] = taken if found.all() else pd.Series(taken).where(found).to_numpy()
    return columns


def stacked_frame(
    results: PhaseResults,
    node: GraphNode,
    domain: str,
    *,
    sources: Sequence[FeatureSetReference] = (),
    role: str = "default",
    unscale: bool = False,
    epoch: int | None = None,
    batch: int | None = None,
) -> Any:
    """The samples of ``node`` in ``results`` as one DataFrame (what ``stacked_tensors(..., fmt="pandas")`` returns).

    Columns, in order: ``fold`` (only when the phase ran in a fold), ``epoch``, ``batch``,
    ``sample_uuids``; then ``domain``'s values: for ``"outputs"`` the predictions and the targets
    (``outputs.<key>``, ``targets.<key>``), for ``"targets"`` and ``"tags"`` that domain; and for
    ``"outputs"`` and ``"targets"`` every tag of the source FeatureSet (``tags.<key>``). With
    ``unscale`` the predictions and targets are in the targets' original units. A node fed by
    several FeatureSets gets generic column names (``outputs``, ``targets``) and no tag columns.

    Args:
        results: The results holding the steps.
        node: The node.
        domain: ``"outputs"``, ``"targets"``, ``"tags"`` or ``"sample_uuids"``.
        sources: The FeatureSet references feeding ``node`` (where keys and tags come from).
        role, unscale, epoch, batch: As :meth:`PhaseResults.stacked_tensors`.

    Raises:
        ImportError: If pandas is not installed.
        ValueError, KeyError: As :meth:`PhaseResults.stacked_tensors`.
    """
    pd = import_pandas()
    series = results.batches(node, epoch=epoch, batch=batch)
    roles = [(key, b.get_role(role)) for key, b in series.items()]
    uuids = np.concatenate([np.asarray(to_numpy(r.sample_uuids)).astype(str) for _, r in roles])
    sizes = [len(r.sample_uuids) for _, r in roles]
    columns: dict[str, Any] = {}
    if results.fold is not None:
        columns["fold"] = np.full(len(uuids), results.fold, dtype=object)
    columns["epoch"] = np.repeat([key[0] for key, _ in roles], sizes).astype(np.int64)
    columns["batch"] = np.repeat([key[1] for key, _ in roles], sizes).astype(np.int64)
    columns["sample_uuids"] = uuids
    fs, target_keys, tag_keys = _source(sources)

    def values(of: str) -> np.ndarray:
        array = to_numpy(concat_values([getattr(r, of) for _, r in roles], f"{of} of node {node.label!r}"))
        return results._unscale(node, array, uuids) if unscale and of in ("outputs", "targets") else array

    has_targets = all(r.targets is not None for _, r in roles)
    if domain == "outputs" and not has_targets:
        columns.update(_split_columns("outputs", values("outputs"), []))
    elif domain == "outputs":
        outputs, targets = values("outputs"), values("targets")
        same_layout = int(np.prod(outputs.shape[1:])) == int(np.prod(targets.shape[1:]))
        if same_layout and outputs.shape != targets.shape:
            outputs = outputs.reshape(targets.shape)
        columns.update(_split_columns("outputs", outputs, target_keys if same_layout else []))
        columns.update(_split_columns("targets", targets, target_keys))
    elif domain == "targets":
        columns.update(_split_columns("targets", values("targets"), target_keys))
    elif domain == "tags":
        columns.update(_split_columns("tags", values("tags"), tag_keys))
    if domain in ("outputs", "targets") and fs is not None:
        columns.update(_tags_by_uuid(fs, uuids))
    return pd.DataFrame(columns)
