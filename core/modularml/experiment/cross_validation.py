"""Cross-validation: :class:`CVBinding`, :class:`CrossValidation` and the fold function executors run.

A cross-validation pools some splits of each bound FeatureSet, cuts the pool into ``n_folds``
parts (whole groups with ``group_by``, every stratum spread over the folds with
``stratify_by``), and runs the same phases once per fold: in fold *i* the binding's validation
split is part *i* and its training split the rest, under the split names the phases read.

Each fold is independent work: it travels to an executor as plain data (the experiment's state
in the file format, see :mod:`modularml.experiment.files`, plus the fold's rows), is rebuilt there
in a context of its own, refits every scaler of the FeatureSet on the fold's training rows, and
returns its results as plain data. So the same run works in this process (``executor="local"``)
and on a Ray cluster (``executor="ray"``, the ``modularml-ray`` plugin), and never changes the
caller's FeatureSets, graph or history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.backends.seeding import seed_everything
from modularml.context import ExperimentContext
from modularml.context.fold import fold_scope
from modularml.data.featureset import FeatureSet
from modularml.data.lookup import resolve_featureset
from modularml.data.view import FeatureSetView
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.experiment.files import plan_config, plan_from_config, restore_experiment
from modularml.phases.base import ExperimentPhase
from modularml.phases.phase_group import PhaseGroup
from modularml.results.cv_results import CVResults
from modularml.results.serialization import results_from_state, results_to_state
from modularml.utils.environment import IN_NOTEBOOK

if TYPE_CHECKING:
    from modularml.experiment.experiment import Experiment

__all__ = ["CVBinding", "CrossValidation", "run_fold"]


def _selectors(value: str | Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise InvalidTypeError(f"{what} is a tag key or a list of tag keys; got {value!r}.")
    return items


class CVBinding:
    """How one FeatureSet takes part in a cross-validation.

    Args:
        fs: The FeatureSet, or its label or node id (looked up in the active context when the
            cross-validation runs).
        source_splits: Existing splits pooled before folding, e.g. ``["train", "val"]``.
        group_by: Tag keys whose groups stay whole (every sample of a group in one part).
            Mutually exclusive with ``stratify_by``.
        stratify_by: Tag keys whose strata are spread evenly over the parts.
        train_split_name: The split that receives each fold's training rows (the one the
            training phase reads). Defaults to ``"train"``.
        val_split_name: The split that receives each fold's validation rows. Defaults to ``"val"``.
        val_size: Fraction of the pool validated on in each fold. None (the default) gives
            k-fold cross-validation: the pool is cut into ``n_folds`` disjoint parts (each about
            ``1 / n_folds``) and every sample is validated on exactly once. A number gives
            repeated random validation: each fold draws its own validation rows (of that
            fraction of the pool, whole groups or per stratum), independently of the others.

    Raises:
        TypeError: For arguments of the wrong type.
        ValueError: If no source split is given, both ``group_by`` and ``stratify_by`` are,
            the split names are equal, or ``val_size`` is not in (0, 1).
    """

    def __init__(
        self,
        fs: str | FeatureSet,
        source_splits: Sequence[str],
        *,
        group_by: str | Sequence[str] | None = None,
        stratify_by: str | Sequence[str] | None = None,
        train_split_name: str = "train",
        val_split_name: str = "val",
        val_size: float | None = None,
    ) -> None:
        if not isinstance(fs, (str, FeatureSet)):
            raise InvalidTypeError(f"fs is a FeatureSet, its label or its node id; got {type(fs).__name__}.")
        if isinstance(source_splits, str) or not isinstance(source_splits, Sequence) or not source_splits:
            raise InvalidArgumentError(
                f"source_splits is a non-empty list of split names, e.g. ['train', 'val']; got {source_splits!r}."
            )
        self.group_by = _selectors(group_by, "group_by")
        self.stratify_by = _selectors(stratify_by, "stratify_by")
        if self.group_by and self.stratify_by:
            raise InvalidArgumentError("Give group_by or stratify_by, not both.")
        for name, value in (("train_split_name", train_split_name), ("val_split_name", val_split_name)):
            if not isinstance(value, str) or not value:
                raise InvalidTypeError(f"{name} is a split name; got {value!r}.")
        if train_split_name == val_split_name:
            raise InvalidArgumentError(f"train_split_name and val_split_name are both {train_split_name!r}.")
        if val_size is not None and (
            isinstance(val_size, bool) or not isinstance(val_size, (int, float)) or not 0 < val_size < 1
        ):
            raise InvalidArgumentError(f"val_size is a fraction in (0, 1), or None for k-fold; got {val_size!r}.")
        self._fs = fs
        self.source_splits = list(source_splits)
        self.train_split_name = train_split_name
        self.val_split_name = val_split_name
        self.val_size = None if val_size is None else float(val_size)

    @property
    def featureset(self) -> FeatureSet:
        """The bound FeatureSet (looked up in the active context if given by label or id).

        Raises:
            KeyError: If it is not registered.
        """
        if isinstance(self._fs, FeatureSet):
            return self._fs
        ctx = ExperimentContext.get_active()
        if ctx.has_node(node_id=self._fs):
            return resolve_featureset(None, self._fs, ctx)
        return resolve_featureset(self._fs, None, ctx)

    def pool(self) -> np.ndarray:
        """The pooled rows of the source splits (sorted, each once).

        Raises:
            KeyError: If a source split does not exist.
        """
        fs = self.featureset
        missing = [s for s in self.source_splits if s not in fs.available_splits]
        if missing:
            raise NotRegisteredError(
                f"CVBinding of FeatureSet {fs.label!r}: source splits {missing} do not exist; its splits are "
                f"{fs.available_splits}."
            )
        return np.unique(np.concatenate([np.asarray(fs.get_split(s).valid_indices) for s in self.source_splits]))

    def folds(self, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(training rows, validation rows)`` of every fold, each sorted.

        Raises:
            ValueError: If the pool has fewer samples (or groups) than folds.
        """
        fs = self.featureset
        rows = self.pool()
        keys = self.group_by or self.stratify_by
        codes = None
        if keys:
            from modularml.splitters.random_splitter import row_group_codes

            view = FeatureSetView.trusted(fs, rows, fs.schema.names, None)
            codes = row_group_codes(view, keys)[0]
        what = "groups" if self.group_by else "samples"
        units = len(np.unique(codes)) if self.group_by else len(rows)
        if units < n_folds:
            raise InvalidArgumentError(
                f"CVBinding of FeatureSet {fs.label!r}: the pool of {self.source_splits} has {units} {what}, fewer "
                f"than the {n_folds} folds."
            )
        if self.val_size is None:
            parts = _kfold_parts(rows, codes, n_folds, seed, grouped=bool(self.group_by))
            return [
                (np.sort(np.concatenate([p for j, p in enumerate(parts) if j != i])), np.sort(parts[i]))
                for i in range(n_folds)
            ]
        out = []
        for i in range(n_folds):
            val = _random_part(rows, codes, self.val_size, seed, i, grouped=bool(self.group_by))
            out.append((np.setdiff1d(rows, val), np.sort(val)))
        return out

    def __repr__(self) -> str:
        name = self._fs.label if isinstance(self._fs, FeatureSet) else self._fs
        return (
            f"CVBinding(fs={name!r}, source_splits={self.source_splits}, group_by={self.group_by}, "
            f"stratify_by={self.stratify_by}, train={self.train_split_name!r}, val={self.val_split_name!r})"
        )


def _kfold_parts(rows: np.ndarray, codes: np.ndarray | None, n: int, seed: int, *, grouped: bool) -> list[np.ndarray]:
    """``n`` disjoint parts of ``rows`` covering them: whole groups, per stratum, or at random."""
    rng = np.random.default_rng(seed)
    if codes is None:
        return list(np.array_split(rng.permutation(rows), n))
    if grouped:  # largest groups first (ties in random order), each to the part with fewest samples
        groups = rng.permutation(np.unique(codes))
        counts = np.bincount(codes)
        order = groups[np.argsort(-counts[groups], kind="stable")]
        totals = np.zeros(n, dtype=np.int64)
        part_of = np.empty(codes.max() + 1, dtype=np.int64)
        for group in order:
            target = int(np.argmin(totals))
            part_of[group] = target
            totals[target] += int(counts[group])
        return [rows[part_of[codes] == i] for i in range(n)]
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    offset = 0
    for stratum in np.unique(codes):  # every stratum dealt round the parts, continuing where the last stopped
        members = rng.permutation(rows[codes == stratum])
        assigned = (offset + np.arange(len(members))) % n
        for i in range(n):
            parts[i].append(members[assigned == i])
        offset = (offset + len(members)) % n
    return [np.concatenate(p) for p in parts]


def _random_part(rows: np.ndarray, codes: np.ndarray | None, size: float, seed: int, fold: int, *, grouped: bool):
    """The validation rows of one fold of repeated random validation (``size`` of the pool)."""
    rng = np.random.default_rng([seed, fold])
    target = max(1, round(size * len(rows)))
    if codes is None:
        return rng.permutation(rows)[:target]
    if grouped:
        chosen, total = [], 0
        for group in rng.permutation(np.unique(codes)):
            if total >= target:
                break
            members = rows[codes == group]
            chosen.append(members)
            total += len(members)
        return np.concatenate(chosen)
    picked = []
    for stratum in np.unique(codes):
        members = rng.permutation(rows[codes == stratum])
        picked.append(members[: max(1, round(size * len(members)))])
    return np.concatenate(picked)


# ---------------------------------------------------------------------------------------------
# the fold function (runs wherever the executor sends it)
# ---------------------------------------------------------------------------------------------
def run_fold(item: Mapping[str, Any]) -> dict[str, Any]:
    """Run one fold from plain data and return its results as plain data.

    ``item`` holds the experiment's state with an initialised model graph (``state``), the phases
    to run (``plan``), the fold's rows per FeatureSet node id (``splits``: ``{node_id:
    {split name: rows}}``, training split first), its ``label``, ``seed``, display ``flags`` and
    the packaged source of the caller's own modules. The fold is rebuilt in an
    ExperimentContext of its own, every scaler of each bound FeatureSet is refit on the fold's
    training rows, the random generators are seeded with ``seed`` and the phases run (with
    checkpointing off). Executors call this; it is a module-level function, so that a worker in
    another process imports it by name.

    A failure propagates as it is; executors raise it as an ``ExecutionError`` naming the fold
    (its ``label``) with the failure as its cause.

    Returns:
        dict: ``index``, ``label`` and ``results`` (:func:`~modularml.results.serialization.results_to_state`
        of the fold's PhaseGroupResults, without the inputs of recorded steps).
    """
    from modularml.experiment.experiment import Experiment
    from modularml.plugins.resolver import loading

    label = item["label"]
    with ExperimentContext().activate() as ctx, fold_scope(label):
        # the caller's own classes (captured from its live modules when the run started) are trusted here
        with loading(what=f"cross-validation fold {label!r}", allow_packaged_code=True, packaged=item["packaged"]):
            experiment = Experiment(item["experiment_label"], ctx=ctx)
            restore_experiment(item["state"], experiment=experiment, allow_packaged_code=True)
            for node_id, splits in item["splits"].items():
                fs = ctx.get_node(node_id=node_id, enforce_type="FeatureSet")
                for name in splits:
                    fs.remove_split(name, missing_ok=True)
                for name, rows in splits.items():
                    fs.add_split(FeatureSetView.trusted(fs, _readonly(rows), fs.schema.names, name))
                fs.refit_scalers(next(iter(splits)))  # the fold's training split
            plan = plan_from_config(item["plan"])
        graph = experiment.model_graph
        backends = graph.backends if graph is not None else []
        seed_everything(int(item["seed"]), backends=backends)
        with experiment.disable_checkpointing():
            results = experiment.run_group(plan, **dict(item.get("flags") or {}))
    return {"index": item["index"], "label": label, "results": results_to_state(results, keep_inputs=False)}


def _readonly(rows: Any) -> np.ndarray:
    array = np.array(rows, dtype=np.int64)
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------------------------
# the strategy
# ---------------------------------------------------------------------------------------------
@dataclass
class _Fold:
    index: int
    label: str
    rows: dict[str, dict[str, np.ndarray]]  # FeatureSet label -> split -> rows


class CrossValidation:
    """Cross-validation execution strategy: the same phases once per fold, each on its own splits.

    Args:
        label: Label of the cross-validation; fold ``i`` is labelled ``"<label>_fold<i>"``.
            Defaults to ``"CV"``.
        bindings: One or more :class:`CVBinding` (one per FeatureSet that is folded).
        n_folds: Number of folds, at least 2. Defaults to 5.
        seed: Seed of the fold assignment and of every fold's random generators (the same in
            every fold and on every executor). Defaults to 13.
        phase: A TrainPhase or PhaseGroup run in each fold; the experiment's execution plan when
            None.
        experiment: The experiment whose FeatureSets, graph and phases are used; the active
            context's experiment when None.

    Raises:
        TypeError: If ``bindings`` are not CVBindings, ``phase`` is not a phase or group, or no
            experiment is given or active.
        ValueError: If ``n_folds < 2`` or two bindings fold the same FeatureSet.

    Example:
        >>> cv = CrossValidation(bindings=CVBinding(fs, ["train", "val"], group_by="cell_id"), n_folds=5)
        >>> results = cv.run(executor="ray", show_training_progress=False)
        >>> print(results.summary_table())
    """

    def __init__(
        self,
        *,
        label: str = "CV",
        bindings: CVBinding | Sequence[CVBinding],
        n_folds: int = 5,
        seed: int = 13,
        phase: ExperimentPhase | PhaseGroup | None = None,
        experiment: Experiment | None = None,
    ) -> None:
        bindings = [bindings] if isinstance(bindings, CVBinding) else list(bindings)
        if not bindings or not all(isinstance(b, CVBinding) for b in bindings):
            raise InvalidTypeError(f"bindings is a CVBinding or a list of them; got {bindings!r:.120}.")
        if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
            raise InvalidArgumentError(f"n_folds is an int >= 2; got {n_folds!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidTypeError(f"seed is an int; got {seed!r}.")
        if phase is not None and not isinstance(phase, (ExperimentPhase, PhaseGroup)):
            raise InvalidTypeError(f"phase is a TrainPhase or a PhaseGroup (or None); got {type(phase).__name__}.")
        if not isinstance(label, str) or not label:
            raise InvalidTypeError(f"label is a non-empty string; got {label!r}.")
        self.label = label
        self.bindings = bindings
        self.n_folds = n_folds
        self.seed = seed
        self.phase = phase
        self._experiment = experiment

    @property
    def experiment(self) -> Experiment:
        """The experiment (given, or the active context's).

        Raises:
            TypeError: If none is given and the active context has none.
        """
        experiment = self._experiment or ExperimentContext.get_active().get_experiment()
        if experiment is None:
            raise InvalidTypeError(
                "CrossValidation needs an Experiment: pass experiment=..., or create one first "
                "(mml.Experiment.from_active_context('exp'))."
            )
        return experiment

    def fold_rows(self) -> list[dict[str, dict[str, np.ndarray]]]:
        """Per fold: FeatureSet label -> {training split name: rows, validation split name: rows}.

        Raises:
            ValueError: If two bindings fold the same FeatureSet, or a pool is too small.
        """
        per_binding = []
        seen: set[str] = set()
        for binding in self.bindings:
            fs = binding.featureset
            if fs.node_id in seen:
                raise InvalidArgumentError(f"Two CVBindings fold FeatureSet {fs.label!r}; give one per FeatureSet.")
            seen.add(fs.node_id)
            per_binding.append((fs, binding, binding.folds(self.n_folds, self.seed)))
        return [
            {fs.label: {b.train_split_name: folds[i][0], b.val_split_name: folds[i][1]} for fs, b, folds in per_binding}
            for i in range(self.n_folds)
        ]

    def _plan(self, experiment: Experiment) -> PhaseGroup:
        if self.phase is None:
            if not len(experiment.execution_plan):
                raise InvalidArgumentError(
                    f"CrossValidation {self.label!r}: pass phase=..., or add phases to the execution plan of "
                    f"experiment {experiment.label!r}."
                )
            return experiment.execution_plan
        if isinstance(self.phase, PhaseGroup):
            return self.phase
        return PhaseGroup(self.label, [self.phase])

    def _initial_state(self, experiment: Experiment) -> dict[str, Any]:
        """The experiment's state without its history and with a built model graph (every fold starts from it).

        An unbuilt graph is built in a context of its own with the generators seeded from :attr:`seed`,
        so that every run of this cross-validation starts its folds from the same weights.
        """
        from modularml.experiment.experiment import Experiment as _Experiment
        from modularml.plugins.resolver import loading

        state = experiment.get_state()
        state["history"] = []
        graph = experiment.model_graph
        if graph is None or graph.get_state()["is_built"]:
            return state
        from modularml.backends.randomness import capture_rng_state, restore_rng_state

        backends = graph.backends
        saved = capture_rng_state(backends)  # the caller's generators are left as they were
        try:
            with ExperimentContext().activate() as ctx, loading(what="cross-validation", allow_packaged_code=True):
                scratch = _Experiment(experiment.label, ctx=ctx)
                restore_experiment(state, experiment=scratch, allow_packaged_code=True)
                seed_everything(self.seed, backends=backends)  # the same initial weights on every run
                scratch.model_graph.ensure_built()
                return scratch.get_state()
        finally:
            restore_rng_state(saved)

    def run(
        self,
        *,
        show_fold_progress: bool = True,
        persist_progress: bool = IN_NOTEBOOK,
        executor: str | Any | None = None,
        **kwargs: Any,
    ) -> CVResults:
        """Run every fold and collect their results.

        Args:
            show_fold_progress: Show a progress bar over finished folds. Defaults to True.
            persist_progress: Keep the phases' progress bars visible (passed to the phases).
            executor: ``"local"`` (in this process, one fold after the other; the default),
                ``"ray"`` (the ``modularml-ray`` plugin), another registered executor's name, or an
                executor instance (anything with ``map(fn, items, *, show_progress, description)``).
            **kwargs: Display flags passed to each fold's phases (``show_training_progress=False``...).

        Returns:
            CVResults: One PhaseGroupResults per fold.

        Raises:
            ModularMLError: If a fold fails (naming the fold, the cause chained); the other folds
                are not waited for.
        """
        from modularml.plugins.packaging import package_code

        experiment = self.experiment
        with experiment.ctx.activate():
            plan = self._plan(experiment)
            folds = [_Fold(i, f"{self.label}_fold{i}", rows) for i, rows in enumerate(self.fold_rows())]
            ids = {b.featureset.label: b.featureset.node_id for b in self.bindings}
            state = self._initial_state(experiment)
            plan_state = plan_config(plan)
        packaged = package_code({"state": state, "plan": plan_state}, what=f"cross-validation {self.label!r}")
        flags = {**kwargs, "persist_progress": persist_progress}
        items = [
            {
                "index": fold.index,
                "label": fold.label,
                "experiment_label": experiment.label,
                "state": state,
                "plan": plan_state,
                "splits": {ids[fs]: splits for fs, splits in fold.rows.items()},
                "seed": self.seed,
                "flags": flags,
                "packaged": packaged,
            }
            for fold in folds
        ]
        outputs = _executor(executor).map(run_fold, items, show_progress=show_fold_progress, description=self.label)
        by_index = {int(out["index"]): out for out in outputs}
        with experiment.ctx.activate():
            results = [results_from_state(by_index[fold.index]["results"]) for fold in folds]
        return CVResults(self.label, results, [f.label for f in folds], [f.rows for f in folds])  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"CrossValidation(label={self.label!r}, n_folds={self.n_folds}, bindings={self.bindings})"


def _executor(executor: str | Any | None) -> Any:
    """An executor instance from a registered name (``"local"``, ``"ray"``), an instance, or None (local)."""
    if executor is None:
        executor = "local"
    if isinstance(executor, str):
        from modularml.plugins.manager import get_plugin_manager

        registry = get_plugin_manager().registry("executors")
        try:
            cls = registry.get(executor)
        except (NotRegisteredError, KeyError) as exc:
            raise NotRegisteredError(
                f"No executor {executor!r} is registered ({exc}). 'local' is built in; install modularml[ray] for "
                "'ray'."
            ) from None
        return cls()
    if not callable(getattr(executor, "map", None)):
        raise InvalidTypeError(f"executor is a registered name or an object with map(); got {type(executor).__name__}.")
    return executor
