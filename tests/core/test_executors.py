"""The in-process executor: order, progress, and how a failed item is reported (as every executor reports it)."""

from __future__ import annotations

import pickle

import pytest

from modularml.errors import ExecutionError, ModularMLError
from modularml.executors import LocalExecutor, item_label, work_item_error


def _fail_on_two(item: object) -> object:
    value = item["value"] if isinstance(item, dict) else item
    if value == 2:
        raise KeyError(f"no value {value}")
    return value


def test_map_returns_results_in_input_order() -> None:
    assert LocalExecutor().map(lambda x: x * 10, iter([3, 1, 2])) == [30, 10, 20]
    assert LocalExecutor().map(str, []) == []


def test_a_failing_item_is_named_by_index_and_label_and_chains_the_cause() -> None:
    ran = []

    def fn(item: dict) -> object:
        ran.append(item["value"])
        return _fail_on_two(item)

    items = [{"value": v, "label": f"fold-{v}"} for v in range(4)]
    with pytest.raises(ExecutionError) as caught:
        LocalExecutor().map(fn, items)
    error = caught.value
    assert isinstance(error, ModularMLError)
    assert isinstance(error, RuntimeError)
    assert str(error) == "work item 2 ('fold-2') failed: KeyError: 'no value 2'"
    assert (error.index, error.label) == (2, "fold-2")
    assert type(error.__cause__) is KeyError
    assert ran == [0, 1, 2], "later items do not run"


def test_an_item_without_a_string_label_is_named_by_index_only() -> None:
    with pytest.raises(ExecutionError, match=r"^work item 2 failed: KeyError") as caught:
        LocalExecutor().map(_fail_on_two, [0, 1, 2])
    assert caught.value.label is None
    assert item_label({"label": 3}) is None
    assert item_label({"label": "a"}) == "a"
    assert item_label(["label"]) is None


def test_execution_error_pickles_with_its_index_and_label() -> None:
    error = work_item_error(4, {"label": "fold-4"}, ValueError("bad"))
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.index, copy.label) == (str(error), 4, "fold-4")


def test_progress_bar_over_items(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("modularml.executors.bars_allowed", lambda: True)  # as in a terminal
    assert LocalExecutor(show_progress=True).map(abs, [-1, -2], description="folds") == [1, 2]
    err = capsys.readouterr().err
    assert "folds" in err
    assert "2/2" in err
