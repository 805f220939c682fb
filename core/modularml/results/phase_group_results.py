"""``PhaseGroupResults``: the results of a PhaseGroup, in the same hierarchy and execution order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.results.eval_results import EvalResults
from modularml.results.fit_results import FitResults
from modularml.results.metric_store import MetricStore
from modularml.results.phase_results import PhaseResults
from modularml.results.train_results import TrainResults

__all__ = ["PhaseGroupResults"]

_R = TypeVar("_R")


@dataclass
class PhaseGroupResults:
    """Hierarchical results container matching the structure of a PhaseGroup.

    Stores the :class:`PhaseResults` of each phase and a nested ``PhaseGroupResults`` for each
    sub-group, keyed by label, in execution order.

    Lookups by label search this level first, then the nested groups; a label found more than
    once below this level is ambiguous and raises. A lookup without a label (``get_train_result()``)
    returns the only result of that kind anywhere in the hierarchy.

    Attributes:
        label (str): Label of the PhaseGroup that produced these results.

    Example:
        >>> train_res = group_results.get_phase_result("train")
        >>> for label, phase_res in group_results.flatten().items():
        ...     print(label, type(phase_res).__name__)
    """

    label: str
    _results: dict[str, PhaseResults | PhaseGroupResults] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise InvalidTypeError(f"A PhaseGroupResults label is a non-empty string; got {self.label!r}.")
        given, self._results = dict(self._results), {}
        for result in given.values():
            self.add_result(result)

    # ------------------------------------------------------------------ recording
    def add_result(self, result: PhaseResults | PhaseGroupResults) -> None:
        """Record a phase or group result after the existing ones.

        Args:
            result (PhaseResults | PhaseGroupResults): The result to add; its label must be unique
                within this group.

        Raises:
            TypeError: If ``result`` is not a PhaseResults or PhaseGroupResults.
            ValueError: If a result with the same label already exists at this level.
        """
        if not isinstance(result, (PhaseResults, PhaseGroupResults)):
            raise InvalidTypeError(
                f"add_result() takes a PhaseResults or PhaseGroupResults; got {type(result).__name__}."
            )
        if result.label in self._results:
            raise InvalidArgumentError(
                f"PhaseGroupResults {self.label!r} already holds a result labelled {result.label!r}; labels are "
                "unique within a group."
            )
        self._results[result.label] = result

    # ------------------------------------------------------------------ views
    @property
    def labels(self) -> list[str]:
        """All top-level result labels, in execution order."""
        return list(self._results)

    @property
    def phase_results(self) -> dict[str, PhaseResults]:
        """Only the top-level PhaseResults entries, keyed by label."""
        return {k: v for k, v in self._results.items() if isinstance(v, PhaseResults)}

    @property
    def group_results(self) -> dict[str, PhaseGroupResults]:
        """Only the top-level nested PhaseGroupResults entries, keyed by label."""
        return {k: v for k, v in self._results.items() if isinstance(v, PhaseGroupResults)}

    def items(self) -> Iterator[tuple[str, PhaseResults | PhaseGroupResults]]:
        """Iterate over ``(label, result)`` pairs of this level in execution order."""
        return iter(list(self._results.items()))

    def flatten(self) -> dict[str, PhaseResults]:
        """All phase results of the hierarchy (depth first) as one ``label -> PhaseResults`` mapping.

        The mapping preserves execution order.

        Raises:
            ValueError: If two phases anywhere in the hierarchy share a label.
        """
        out: dict[str, PhaseResults] = {}
        for label, phase_result in self._iter_phase_results(()):
            if label[-1] in out:
                raise InvalidArgumentError(
                    f"Cannot flatten PhaseGroupResults {self.label!r}: phase label {label[-1]!r} occurs more than "
                    "once in the hierarchy. Use get_group_result(...) to reach each group's results instead."
                )
            out[label[-1]] = phase_result
        return out

    def metrics_to_pandas(self) -> Any:
        """The metrics of every phase in this group (nested groups too) as one long-format DataFrame.

        Columns ``phase`` (the phase's label, preceded by the labels of the nested groups it is in:
        ``"inner/train"``), ``name``, ``epoch``, ``batch``, ``value``; phases in execution order.
        When any phase ran in a cross-validation fold, a ``fold`` column follows ``phase`` (missing
        for phases outside a fold). Needs pandas.
        """
        from modularml.data.formats import import_pandas

        pd = import_pandas()
        results = list(self._iter_phase_results(()))
        if not results:
            return MetricStore().to_pandas(phase="")
        any_fold = any(result.fold is not None for _, result in results)
        frames = [result.metrics().to_pandas(phase="/".join(path)) for path, result in results]
        if any_fold:
            for frame, (_, result) in zip(frames, results, strict=True):
                frame.insert(1, "fold", pd.Series([result.fold] * len(frame), dtype="object"))
        return pd.concat(frames, ignore_index=True)

    def _iter_phase_results(self, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], PhaseResults]]:
        for label, result in self._results.items():
            if isinstance(result, PhaseGroupResults):
                yield from result._iter_phase_results((*prefix, label))
            else:
                yield (*prefix, label), result

    def _iter_all(self) -> Iterator[tuple[str, PhaseResults | PhaseGroupResults]]:
        """Every result below this level, depth first (groups before their contents)."""
        for label, result in self._results.items():
            yield label, result
            if isinstance(result, PhaseGroupResults):
                yield from result._iter_all()

    # ------------------------------------------------------------------ lookups
    def _find(self, label: str | None, cls: type[_R], what: str) -> _R:
        if label is None:
            found = [(lbl, r) for lbl, r in self._iter_all() if isinstance(r, cls)]
            if len(found) == 1:
                return found[0][1]
            if not found:
                raise NotRegisteredError(f"PhaseGroupResults {self.label!r} holds no {what}.")
            raise InvalidArgumentError(
                f"PhaseGroupResults {self.label!r} holds {len(found)} results of type {what} "
                f"{[lbl for lbl, _ in found]}; pass the label of the one you want."
            )
        if not isinstance(label, str):
            raise InvalidTypeError(f"A result label is a string; got {label!r}.")
        if label in self._results:
            result = self._results[label]
        else:
            matches = [r for lbl, r in self._iter_all() if lbl == label]
            if not matches:
                raise NotRegisteredError(
                    f"PhaseGroupResults {self.label!r} has no result labelled {label!r}; top-level labels: "
                    f"{self.labels}."
                )
            if len(matches) > 1:
                raise InvalidArgumentError(
                    f"Label {label!r} occurs {len(matches)} times in the nested groups of PhaseGroupResults "
                    f"{self.label!r}; look it up through get_group_result(...) first."
                )
            result = matches[0]
        if not isinstance(result, cls):
            raise InvalidTypeError(f"Result {label!r} is a {type(result).__name__}, not a {what}.")
        return result

    def get_phase_result(self, label: str) -> PhaseResults:
        """Retrieve the PhaseResults of the phase labelled ``label``.

        Raises:
            KeyError: If no result has that label.
            TypeError: If the result is a PhaseGroupResults.
            ValueError: If ``label`` is not at this level and occurs several times in nested groups.
        """
        return self._find(label, PhaseResults, "PhaseResults")

    def get_train_result(self, label: str | None = None) -> TrainResults:
        """Retrieve a TrainResults by label; the only one in the hierarchy when ``label`` is None.

        Raises:
            KeyError: If no result has that label (or there is no TrainResults).
            TypeError: If the result is not a TrainResults.
            ValueError: If ``label`` is None and there are several TrainResults.
        """
        return self._find(label, TrainResults, "TrainResults")

    def get_eval_result(self, label: str | None = None) -> EvalResults:
        """Retrieve an EvalResults by label; the only one in the hierarchy when ``label`` is None.

        Raises:
            KeyError: If no result has that label (or there is no EvalResults).
            TypeError: If the result is not an EvalResults.
            ValueError: If ``label`` is None and there are several EvalResults.
        """
        return self._find(label, EvalResults, "EvalResults")

    def get_fit_result(self, label: str | None = None) -> FitResults:
        """Retrieve a FitResults by label; the only one in the hierarchy when ``label`` is None.

        Raises:
            KeyError: If no result has that label (or there is no FitResults).
            TypeError: If the result is not a FitResults.
            ValueError: If ``label`` is None and there are several FitResults.
        """
        return self._find(label, FitResults, "FitResults")

    def get_group_result(self, label: str | None = None) -> PhaseGroupResults:
        """Retrieve a nested PhaseGroupResults by label; the only nested one when ``label`` is None.

        Raises:
            KeyError: If no result has that label (or there is no nested group).
            TypeError: If the result is a PhaseResults.
            ValueError: If ``label`` is None and there are several nested groups.
        """
        return self._find(label, PhaseGroupResults, "PhaseGroupResults")

    # ------------------------------------------------------------------ dunder
    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, label: object) -> bool:
        return label in self._results

    def _repr_html_(self) -> str:
        """A notebook's view: one metrics table per phase, in run order."""
        from modularml.utils.display import html_section, html_table, metrics_rows

        tables = [
            html_section(f"{label} ({type(result).__name__})", html_table(["metric", "epochs", "last", "lowest"], rows))
            for label, result in self.flatten().items()
            if (rows := metrics_rows(result.metrics()))
        ]
        return html_section(f"PhaseGroupResults {self.label!r}: {len(self.flatten())} phase(s)", *tables)

    def __repr__(self) -> str:
        parts = [f"{k}: {type(v).__name__}" for k, v in self._results.items()]
        return f"PhaseGroupResults(label={self.label!r}, results={{{', '.join(parts)}}})"
