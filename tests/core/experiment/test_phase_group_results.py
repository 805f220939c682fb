from __future__ import annotations

import pytest

from modularml.results import EvalResults, FitResults, PhaseGroupResults, TrainResults


def _tree() -> tuple[PhaseGroupResults, dict[str, object]]:
    """top: [train (Train), inner: [val (Eval), deep: [fit (Fit)]], test (Eval)]."""
    r = {
        "train": TrainResults("train"),
        "val": EvalResults("val"),
        "fit": FitResults("fit"),
        "test": EvalResults("test"),
    }
    deep = PhaseGroupResults("deep")
    deep.add_result(r["fit"])
    inner = PhaseGroupResults("inner")
    inner.add_result(r["val"])
    inner.add_result(deep)
    top = PhaseGroupResults("top")
    for item in (r["train"], inner, r["test"]):
        top.add_result(item)
    r.update(inner=inner, deep=deep)
    return top, r


def test_structure_views_and_order() -> None:
    top, r = _tree()
    assert top.label == "top"
    assert top.labels == ["train", "inner", "test"]
    assert list(top.items()) == [("train", r["train"]), ("inner", r["inner"]), ("test", r["test"])]
    assert top.phase_results == {"train": r["train"], "test": r["test"]}
    assert top.group_results == {"inner": r["inner"]}
    assert len(top) == 3
    assert "inner" in top
    assert "val" not in top
    assert repr(top) == (
        "PhaseGroupResults(label='top', results={train: TrainResults, inner: PhaseGroupResults, test: EvalResults})"
    )


def test_flatten_preserves_execution_order_and_refuses_duplicates() -> None:
    top, r = _tree()
    flat = top.flatten()
    assert list(flat) == ["train", "val", "fit", "test"]
    assert [flat[k] is r[k] for k in flat] == [True] * 4
    clash = PhaseGroupResults("clash")
    clash.add_result(EvalResults("val"))
    top.add_result(clash)
    with pytest.raises(ValueError, match="phase label 'val' occurs more than once"):
        top.flatten()


def test_add_result_errors() -> None:
    top, _ = _tree()
    with pytest.raises(ValueError, match="already holds a result labelled 'train'"):
        top.add_result(TrainResults("train"))
    with pytest.raises(TypeError, match="got dict"):
        top.add_result({"label": "x"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty string"):
        PhaseGroupResults("")
    built = PhaseGroupResults("g", {"a": EvalResults("a"), "b": TrainResults("b")})
    assert built.labels == ["a", "b"]
    with pytest.raises(TypeError, match="got int"):
        PhaseGroupResults("g", {"a": 1})  # type: ignore[dict-item]


def test_lookups_by_label_search_nested_groups() -> None:
    top, r = _tree()
    assert top.get_phase_result("train") is r["train"]
    assert top.get_phase_result("fit") is r["fit"]  # two levels down
    assert top.get_train_result("train") is r["train"]
    assert top.get_eval_result("val") is r["val"]
    assert top.get_fit_result("fit") is r["fit"]
    assert top.get_group_result("deep") is r["deep"]
    assert top.get_group_result("inner").get_eval_result("val") is r["val"]
    with pytest.raises(KeyError, match=r"no result labelled 'nope'.*'train', 'inner', 'test'"):
        top.get_phase_result("nope")
    with pytest.raises(TypeError, match="is a PhaseGroupResults, not a PhaseResults"):
        top.get_phase_result("inner")
    with pytest.raises(TypeError, match="is a EvalResults, not a TrainResults"):
        top.get_train_result("val")
    with pytest.raises(TypeError, match="is a TrainResults, not a PhaseGroupResults"):
        top.get_group_result("train")
    with pytest.raises(TypeError, match="result label is a string"):
        top.get_phase_result(0)  # type: ignore[arg-type]
    # a label at this level wins over nested ones; a label only found twice below is ambiguous
    other = PhaseGroupResults("other")
    other.add_result(EvalResults("val"))
    top.add_result(other)
    with pytest.raises(ValueError, match="'val' occurs 2 times"):
        top.get_eval_result("val")
    top.add_result(EvalResults("val"))
    assert top.get_eval_result("val") is top.phase_results["val"]


def test_lookups_without_label_need_exactly_one_match() -> None:
    top, r = _tree()
    assert top.get_train_result() is r["train"]
    assert top.get_fit_result() is r["fit"]
    assert r["inner"].get_group_result() is r["deep"]
    with pytest.raises(ValueError, match=r"2 results of type EvalResults \['val', 'test'\]"):
        top.get_eval_result()
    with pytest.raises(ValueError, match="2 results of type PhaseGroupResults"):
        top.get_group_result()
    with pytest.raises(KeyError, match="holds no TrainResults"):
        r["inner"].get_train_result()
    with pytest.raises(KeyError, match="holds no PhaseGroupResults"):
        r["deep"].get_group_result()
