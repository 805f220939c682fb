"""Results as plain data: :func:`results_to_state` and :func:`results_from_state`.

The state of a :class:`PhaseResults` (or a :class:`PhaseGroupResults` tree) holds only JSON
values and numpy arrays, so it goes into a container file (an experiment file, a resumable
checkpoint) and travels to another process as it is. It keeps everything a phase recorded:

- the metrics, as four columns (name code, value, epoch, batch; ``-1`` for an epoch-level value);
- the execution contexts, *packed*: every array of every context that sits at the same place
  (the outputs of node ``n``, role ``r``, domain ``d``; the loss ``l``...) is concatenated into
  one array with the length each context contributed, so a phase of thousands of steps is a few
  dozen arrays, not thousands;
- the callback results (nested evaluation results included);
- which node each loss belongs to.

The *inputs* of a context are batches gathered from FeatureSets. Where every sample of an input
is found in its FeatureSet (by sample UUID), the input is stored as row indices into that
FeatureSet and comes back as a :class:`~modularml.batches.BatchView` into it: the data itself is
stored once, with the FeatureSet (an experiment file holds every FeatureSet of its context). An
input whose samples are not all found there is stored with its data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.batches.sample_data import RoleData, SampleData
from modularml.batches.tensors import to_numpy
from modularml.context import ExperimentContext
from modularml.data.references import FeatureSetReference
from modularml.errors import NotRegisteredError, SerializationError
from modularml.results.callback_result import CallbackResult
from modularml.results.metric_store import MetricStore
from modularml.results.phase_group_results import PhaseGroupResults
from modularml.results.phase_results import PhaseResults

__all__ = ["results_from_state", "results_to_state"]

#: Version of the layout below; a newer one is refused with a clear error.
STATE_VERSION = 1


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def results_to_state(results: PhaseResults | PhaseGroupResults, *, keep_inputs: bool = True) -> dict[str, Any]:
    """The plain-data state of ``results`` (JSON values and numpy arrays); see the module docstring.

    Args:
        results: What to save.
        keep_inputs: Keep the inputs of the recorded steps. Cross-validation folds leave them out
            (they are the fold's own scaled rows, which only the fold has).

    Raises:
        SerializationError: If a callback result holds a value that is not plain data (JSON values,
            numpy arrays, or results), or an input is keyed by something other than a FeatureSet
            reference.
    """
    if isinstance(results, PhaseGroupResults):
        return {
            "type": "group",
            "version": STATE_VERSION,
            "label": results.label,
            "results": [results_to_state(r, keep_inputs=keep_inputs) for r in results._results.values()],
        }
    if not isinstance(results, PhaseResults):
        raise SerializationError(f"Only PhaseResults and PhaseGroupResults can be saved; got {type(results).__name__}.")
    from modularml.backends.components import import_path

    return {
        "type": "phase",
        "version": STATE_VERSION,
        "class": import_path(type(results)),
        "label": results.label,
        "fold": results.fold,
        "metrics": _metrics_state(results._metrics),
        "loss_nodes": dict(results._loss_nodes),
        "contexts": _ContextPacker(keep_inputs).pack(results._execution),
        "callbacks": [_callback_state(r, results.label, i, keep_inputs) for i, r in enumerate(results._callbacks)],
    }


def _metrics_state(store: MetricStore) -> dict[str, Any]:
    entries = list(store)
    names = store.names
    code = {name: i for i, name in enumerate(names)}
    return {
        "names": names,
        "name_codes": np.fromiter((code[e.name] for e in entries), dtype=np.int32, count=len(entries)),
        "values": np.fromiter((e.value for e in entries), dtype=np.float64, count=len(entries)),
        "epochs": np.fromiter((e.epoch_idx for e in entries), dtype=np.int64, count=len(entries)),
        "batches": np.fromiter(
            (-1 if e.batch_idx is None else e.batch_idx for e in entries), dtype=np.int64, count=len(entries)
        ),
    }


def _callback_state(result: CallbackResult, phase: str, index: int, keep_inputs: bool = True) -> dict[str, Any]:
    from modularml.backends.components import import_path

    where = f"callback result {index} ({result.kind} {result.label!r}) of phase {phase!r}"
    value = result.value
    if isinstance(value, (PhaseResults, PhaseGroupResults)):
        encoded: Any = {"results": results_to_state(value, keep_inputs=keep_inputs)}
    else:
        _check_plain(value, f"the value of {where}")
        encoded = {"value": value}
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "value"}
    _check_plain(fields, f"the fields of {where}")
    path = import_path(type(result))
    if path is None:
        raise SerializationError(f"{where} is a {type(result).__qualname__}, a class defined inside a function.")
    return {"class": path, "fields": fields, **encoded}


def _check_plain(value: Any, where: str) -> None:
    """Refuse, naming ``where``, a value a file cannot hold (it would otherwise fail later, deep in the writer)."""
    if value is None or isinstance(value, (str, bool, int, float, np.generic, np.ndarray)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(f"{where} has the key {key!r}; saved mappings need string keys.")
            _check_plain(item, where)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where)
        return
    raise SerializationError(
        f"{where} is a {type(value).__qualname__} ({value!r:.80}), which cannot be saved: a callback result that is "
        "to be saved holds JSON values, numpy arrays or results (return those from the callback)."
    )


class _ContextPacker:
    """Packs execution contexts into a few concatenated arrays (see the module docstring)."""

    def __init__(self, keep_inputs: bool = True) -> None:
        self.keep_inputs = keep_inputs
        self.slots: dict[tuple[str, ...], list[tuple[int, np.ndarray]]] = {}
        self.uuid_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def pack(self, contexts: list[ExecutionContext]) -> dict[str, Any]:
        meta = []
        for i, ctx in enumerate(contexts):
            inputs = []
            for (node_id, ref), value in ctx.inputs.items() if self.keep_inputs else ():
                if not isinstance(ref, FeatureSetReference):
                    raise SerializationError(
                        f"The input of node {node_id!r} in step (epoch {ctx.epoch_idx}, batch {ctx.batch_idx}) of "
                        f"phase {ctx.phase_label!r} comes from {ref!r:.80}, not a FeatureSet reference; it cannot be "
                        "saved."
                    )
                inputs.append(self._input(i, node_id, ref, value))
            outputs = [self._batch(i, ("out", node_id), batch) for node_id, batch in ctx.outputs.items()]
            for label, loss in ctx.losses.items():
                self._add(i, ("loss", label), _numpy(loss))
            meta.append(
                {
                    "phase_label": ctx.phase_label,
                    "fold": ctx.fold,
                    "epoch_idx": ctx.epoch_idx,
                    "batch_idx": ctx.batch_idx,
                    "inputs": inputs,
                    "outputs": outputs,
                    "losses": list(ctx.losses),
                }
            )
        slots = []
        for path, items in self.slots.items():
            owners = np.fromiter((i for i, _ in items), dtype=np.int64, count=len(items))
            arrays = [a for _, a in items]
            slot: dict[str, Any] = {"path": list(path), "owners": owners}
            first = arrays[0]
            if all(a.shape == first.shape and a.dtype == first.dtype for a in arrays):
                slot["stacked"] = np.stack(arrays) if arrays else first
            elif all(a.ndim >= 1 and a.shape[1:] == first.shape[1:] and a.dtype == first.dtype for a in arrays):
                slot["concatenated"] = np.concatenate(arrays)
                slot["lengths"] = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
            else:
                slot["separate"] = arrays
            slots.append(slot)
        return {"steps": meta, "slots": slots}

    def _add(self, owner: int, path: tuple[str, ...], array: np.ndarray) -> None:
        self.slots.setdefault(path, []).append((owner, array))

    def _batch(self, owner: int, prefix: tuple[str, ...], batch: Batch) -> dict[str, Any]:
        """Record the arrays of ``batch`` under ``prefix``; returns how to rebuild it (roles, domains, keys)."""
        roles = {}
        for role in batch.roles:
            data = batch.get_role(role)
            domains: dict[str, Any] = {}
            for domain in SampleData.DOMAINS:
                value = data[domain]
                if value is None:
                    continue
                if isinstance(value, Mapping):
                    domains[domain] = list(value)
                    for key, item in value.items():
                        self._add(owner, (*prefix, role, domain, key), _numpy(item))
                    continue
                array = _numpy(value)
                if array.dtype.hasobject:  # mixed tags (text and numbers): one typed array per column
                    columns = _object_columns(array, f"the {domain} of role {role!r} of node {prefix[-1]!r}")
                    domains[domain] = {"object_columns": len(columns), "ndim": array.ndim}
                    for index, column in enumerate(columns):
                        self._add(owner, (*prefix, role, domain, f"#{index}"), column)
                else:
                    domains[domain] = None
                    self._add(owner, (*prefix, role, domain), array)
            self._add(owner, (*prefix, role, "weights"), _numpy(batch.role_weights[role]))
            self._add(owner, (*prefix, role, "masks"), _numpy(batch.role_masks[role]))
            roles[role] = domains
        return {"node_id": prefix[-1], "batch_size": batch.batch_size, "roles": roles}

    def _input(self, owner: int, node_id: str, ref: FeatureSetReference, value: Batch | BatchView) -> dict[str, Any]:
        entry: dict[str, Any] = {"node_id": node_id, "ref": ref.get_config()}
        if isinstance(value, BatchView):
            rows = {role: np.asarray(value.role_indices[role]) for role in value.roles}
            weights = value.role_indice_weights
            columns = value.columns
        else:
            rows = self._rows_of(ref, value)
            if rows is None:  # not all of its samples are in the FeatureSet: keep the data itself
                entry["batch"] = self._batch(owner, ("in", node_id), value)
                return entry
            weights = {role: _numpy(value.role_weights[role]) for role in value.roles}
            columns = None
        entry["roles"] = list(rows)
        entry["columns"] = None if columns is None else list(columns)
        for role, indices in rows.items():
            self._add(owner, ("in", node_id, role, "rows"), indices.astype(np.int64, copy=False))
        entry["weighted"] = weights is not None
        if weights is not None:
            for role in rows:
                self._add(owner, ("in", node_id, role, "weights"), np.asarray(weights[role], dtype=np.float32))
        return entry

    def _rows_of(self, ref: FeatureSetReference, batch: Batch) -> dict[str, np.ndarray] | None:
        """Row indices of the samples of ``batch`` in the FeatureSet of ``ref`` (-1 where masked), or None."""
        try:
            fs = ref.resolve_featureset()
        except NotRegisteredError:
            return None
        lookup = self.uuid_rows.get(fs.node_id)
        if lookup is None:
            uuids = fs.collection.sample_uuid_strings()
            order = np.argsort(uuids, kind="stable")
            lookup = self.uuid_rows[fs.node_id] = (uuids[order], order)
        sorted_uuids, order = lookup
        rows = {}
        for role in batch.roles:
            uuids = batch.get_role(role).sample_uuids
            if uuids is None:
                return None
            uuids = np.asarray(uuids).astype(str)
            mask = _numpy(batch.role_masks[role]).astype(bool)
            found = np.searchsorted(sorted_uuids, uuids).clip(0, max(len(sorted_uuids) - 1, 0))
            hit = (sorted_uuids[found] == uuids) if len(sorted_uuids) else np.zeros(len(uuids), dtype=bool)
            if not np.all(hit | ~mask):
                return None
            rows[role] = np.where(mask & hit, order[found] if len(order) else -1, -1).astype(np.int64)
        return rows


def _object_columns(array: np.ndarray, where: str) -> list[np.ndarray]:
    """The columns (last axis) of an object array, each as a typed array (text, numbers)."""
    if array.ndim not in (1, 2):
        raise SerializationError(f"{where} is an object array of {array.ndim} dimensions; it cannot be saved.")
    matrix = array.reshape(len(array), -1)
    columns = []
    for index in range(matrix.shape[1]):
        values = matrix[:, index].tolist()
        text = {isinstance(v, str) for v in values}
        column = np.array(values)
        if len(text) > 1 or column.dtype.hasobject or column.ndim != 1:
            kinds = sorted({type(v).__name__ for v in matrix[:, index]})
            raise SerializationError(
                f"Column {index} of {where} mixes kinds of values ({kinds}); it cannot be saved without pickling. "
                "Give the tag one type per column."
            )
        columns.append(column)
    return columns


def _numpy(value: Any) -> np.ndarray:
    array = to_numpy(value)
    return np.asarray(array)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def results_from_state(
    state: Mapping[str, Any], *, resolve_class: Callable[[str, str], type] | None = None
) -> PhaseResults | PhaseGroupResults:
    """Rebuild results from :func:`results_to_state` output.

    Inputs stored as rows come back as BatchViews into the FeatureSets of the active context
    (found by node id, then label), which must be registered first.

    Args:
        state: The state.
        resolve_class: ``(class path, entry) -> class`` for the results class a state names;
            the plugin layer's resolver (with base ``PhaseResults``) when None.

    Raises:
        SerializationError: If the state is malformed, of a newer layout, or names a FeatureSet
            that is not registered.
    """
    if not isinstance(state, Mapping) or state.get("type") not in ("phase", "group"):
        raise SerializationError(f"A results state is the dict results_to_state() returned; got {state!r:.120}.")
    if not isinstance(state.get("version"), int) or state["version"] > STATE_VERSION:
        raise SerializationError(
            f"The results state has layout version {state.get('version')!r}; this ModularML reads up to "
            f"{STATE_VERSION}. Upgrade modularml to read it."
        )
    if state["type"] == "group":
        group = PhaseGroupResults(state["label"])
        for child in state.get("results") or []:
            group.add_result(results_from_state(child, resolve_class=resolve_class))
        return group
    if resolve_class is None:
        from modularml.plugins.resolver import resolve

        def resolve_class(path: str, entry: str) -> type:
            return resolve(path, what="results class", entry=entry, base=PhaseResults)

    cls = resolve_class(state["class"], f"results {state.get('label')!r} class")
    results = cls(state["label"])
    results.fold = state.get("fold")
    _restore_metrics(results._metrics, state["metrics"])
    results._loss_nodes.update(state.get("loss_nodes") or {})
    for ctx in _unpack_contexts(state["contexts"]):
        results._execution.append(ctx)
    for index, cb in enumerate(state.get("callbacks") or []):
        value = results_from_state(cb["results"], resolve_class=resolve_class) if "results" in cb else cb.get("value")
        result_cls = _resolve_callback_result(cb["class"], f"callback result {index} class")
        results._callbacks.append(result_cls(**dict(cb["fields"]), value=value))
    return results


def _resolve_callback_result(path: str, entry: str) -> type[CallbackResult]:
    from modularml.plugins.resolver import resolve

    return resolve(path, what="callback result class", entry=entry, base=CallbackResult)


def _restore_metrics(store: MetricStore, state: Mapping[str, Any]) -> None:
    names = list(state["names"])
    columns = [np.asarray(state[k]) for k in ("name_codes", "values", "epochs", "batches")]
    if len({len(c) for c in columns}) != 1:
        raise SerializationError("The metric columns of a results state have different lengths.")
    for code, value, epoch, batch in zip(*(c.tolist() for c in columns), strict=True):
        if not 0 <= code < len(names):
            raise SerializationError(f"A metric of a results state names metric {code}; there are {len(names)}.")
        store.log(names[code], value, int(epoch), None if batch < 0 else int(batch))


def _unpack_contexts(state: Mapping[str, Any]) -> list[ExecutionContext]:
    steps = list(state["steps"])
    per_step: list[dict[tuple[str, ...], np.ndarray]] = [{} for _ in steps]
    for slot in state["slots"]:
        path = tuple(slot["path"])
        owners = np.asarray(slot["owners"]).tolist()
        if "stacked" in slot:
            arrays = list(np.asarray(slot["stacked"]))
        elif "concatenated" in slot:
            bounds = np.cumsum(np.asarray(slot["lengths"]))[:-1]
            arrays = np.split(np.asarray(slot["concatenated"]), bounds)
        else:
            arrays = list(slot["separate"])
        if len(arrays) != len(owners):
            raise SerializationError(
                f"The packed slot {path!r} of a results state holds {len(arrays)} arrays for {len(owners)} steps."
            )
        for owner, array in zip(owners, arrays, strict=True):
            if not 0 <= owner < len(steps):
                raise SerializationError(f"The packed slot {path!r} names step {owner}; there are {len(steps)}.")
            per_step[owner][path] = array
    ctx_ = ExperimentContext.get_active()
    contexts = []
    for meta, arrays in zip(steps, per_step, strict=True):
        ctx = ExecutionContext(meta["phase_label"], epoch_idx=meta["epoch_idx"], batch_idx=meta["batch_idx"])
        ctx.fold = meta.get("fold")
        for entry in meta["inputs"]:
            ref = FeatureSetReference.from_config(entry["ref"])
            if "batch" in entry:
                value: Batch | BatchView = _rebuild_batch(entry["batch"], ("in", entry["node_id"]), arrays)
            else:
                try:
                    fs = ref.resolve_featureset(ctx_)
                except NotRegisteredError:
                    raise SerializationError(
                        f"Results of phase {meta['phase_label']!r} read FeatureSet {ref.node_label!r}, which is not "
                        "registered in the active ExperimentContext; load it first."
                    ) from None
                base = ("in", entry["node_id"])
                rows = {role: arrays[(*base, role, "rows")] for role in entry["roles"]}
                weights = (
                    {role: arrays[(*base, role, "weights")] for role in entry["roles"]} if entry["weighted"] else None
                )
                value = BatchView(fs, rows, weights, columns=entry["columns"])
            ctx.set_input(entry["node_id"], ref, value)
        for out in meta["outputs"]:
            ctx.set_output(out["node_id"], _rebuild_batch(out, ("out", out["node_id"]), arrays))
        for label in meta["losses"]:
            loss = arrays[("loss", label)]
            ctx.losses[label] = loss
        contexts.append(ctx)
    return contexts


def _rebuild_batch(
    entry: Mapping[str, Any], prefix: tuple[str, ...], arrays: Mapping[tuple[str, ...], np.ndarray]
) -> Batch:
    role_data, weights, masks = {}, {}, {}
    for role, domains in entry["roles"].items():
        values = {}
        for domain, keys in domains.items():
            if keys is None:
                values[domain] = arrays[(*prefix, role, domain)]
            elif isinstance(keys, Mapping):  # an object array saved column by column
                columns = [arrays[(*prefix, role, domain, f"#{i}")] for i in range(int(keys["object_columns"]))]
                restored = np.empty((len(columns[0]) if columns else 0, len(columns)), dtype=object)
                for index, column in enumerate(columns):
                    restored[:, index] = column.tolist()
                values[domain] = restored[:, 0] if int(keys["ndim"]) == 1 else restored
            else:
                values[domain] = {key: arrays[(*prefix, role, domain, key)] for key in keys}
        role_data[role] = SampleData(**values)
        weights[role] = arrays[(*prefix, role, "weights")]
        masks[role] = arrays[(*prefix, role, "masks")].astype(bool)
    return Batch(int(entry["batch_size"]), RoleData(role_data), weights, masks)
