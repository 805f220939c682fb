from __future__ import annotations

import pytest

import modularml as mml
from modularml.phases import EvalPhase, FitPhase, InputBinding, PhaseGroup, TrainPhase
from modularml.phases.phase_group import phase_from_config


def _train(s, label: str = "train", n_epochs: int = 1) -> TrainPhase:
    sampler = mml.SimpleSampler(batch_size=8, shuffle=True, seed=0)
    return TrainPhase.from_split(label, split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs)


def _eval(s, label: str = "val", split: str = "val") -> EvalPhase:
    return EvalPhase.from_split(label, split=split, losses=[s.loss])


def _train_bindings(s) -> list[InputBinding]:
    return [InputBinding.for_training(node=s.head, sampler=mml.SimpleSampler(batch_size=8), split="train")]


def test_initial_items_and_views(linear_setup) -> None:
    s = linear_setup()
    train, val = _train(s), _eval(s)
    inner = PhaseGroup("inner", [_eval(s, "test", "val")])
    group = PhaseGroup("workflow", [train, inner, val])
    assert group.label == "workflow"
    assert group.all == [train, inner, val]
    assert group.all is not group.all  # a copy: mutating it does not change the group
    assert group.phases == {"train": train, "val": val}
    assert group.phase_groups == {"inner": inner}
    assert list(group.items()) == [("train", train), ("inner", inner), ("val", val)]
    assert len(group) == 3
    assert list(group) == [train, inner, val]
    assert "inner" in group
    assert train in group
    assert "missing" not in group
    assert _eval(s, "other") not in group
    assert repr(group) == "PhaseGroup(label='workflow', items=['train', 'inner', 'val'])"
    assert PhaseGroup("empty").all == []


def test_nested_flatten_is_depth_first_execution_order(linear_setup) -> None:
    s = linear_setup()
    p1, p2, p3, p4, p5 = (_eval(s, f"p{i}") for i in range(1, 6))
    deepest = PhaseGroup("g2", [p3])
    middle = PhaseGroup("g1", [p2, deepest, p4])
    top = PhaseGroup("top").add_phase(p1).add_group(middle).add_phase(p5)
    assert [p.label for p in top.flatten()] == ["p1", "p2", "p3", "p4", "p5"]
    assert middle.flatten() == [p2, p3, p4]
    assert PhaseGroup("empty", [PhaseGroup("also_empty")]).flatten() == []


def test_train_constructors_and_aliases(linear_setup) -> None:
    s = linear_setup()
    group = PhaseGroup("g")
    assert group.add_train("a", input_sources=_train_bindings(s), losses=[s.loss]) is group
    assert group.add_training("b", input_sources=_train_bindings(s), losses=[s.loss], n_epochs=3) is group
    assert (
        group.add_train_phase(
            "c",
            input_sources=_train_bindings(s),
            losses=[s.loss],
            batch_schedule="alternate_cycle",
            active_nodes=[s.head],
            result_recording="last",
        )
        is group
    )
    phases = [group.get_train_phase(label) for label in ("a", "b", "c")]
    assert all(type(p) is TrainPhase for p in phases)
    assert [p.n_epochs for p in phases] == [1, 3, 1]
    assert phases[2].batch_schedule is mml.BatchSchedulingPolicy.ALTERNATE_CYCLE
    assert phases[2].active_nodes == [s.head.node_id]
    assert phases[2].result_recording is mml.ResultRecording.LAST
    assert phases[0].losses == [s.loss]
    with pytest.raises(ValueError, match="at least one AppliedLoss"):
        group.add_train("d", input_sources=_train_bindings(s), losses=[])
    assert group.phases.keys() == {"a", "b", "c"}


def test_eval_and_fit_constructors_and_aliases(linear_setup) -> None:
    s = linear_setup()
    bindings = [InputBinding.for_evaluation(node=s.head, split="val")]
    group = PhaseGroup("g")
    group.add_eval("a", input_sources=bindings).add_evaluation("b", input_sources=bindings, losses=[s.loss])
    group.add_eval_phase("c", input_sources=bindings, batch_size=4)
    group.add_fit("d", input_sources=bindings).add_fit_phase("e", input_sources=bindings, freeze_after_fit=False)
    evals = [group.get_eval_phase(label) for label in ("a", "b", "c")]
    assert all(type(p) is EvalPhase for p in evals)
    assert [len(p.losses) for p in evals] == [0, 1, 0]
    assert [p.batch_size for p in evals] == [None, None, 4]
    fits = [group.get_fit_phase(label) for label in ("d", "e")]
    assert all(type(p) is FitPhase for p in fits)
    assert [p.freeze_after_fit for p in fits] == [True, False]
    assert [p.label for p in group.flatten()] == ["a", "b", "c", "d", "e"]


def test_labels_are_unique_within_a_group(linear_setup) -> None:
    s = linear_setup()
    group = PhaseGroup("g", [_eval(s, "val")])
    with pytest.raises(ValueError, match="already has an item labelled 'val'"):
        group.add_phase(_eval(s, "val"))
    with pytest.raises(ValueError, match="'val'"):
        group.add_group(PhaseGroup("val"))
    with pytest.raises(ValueError, match="already has an item labelled 'val'"):
        group.add_eval("val", input_sources=[InputBinding.for_evaluation(node=s.head, split="val")])
    with pytest.raises(ValueError, match="already has an item labelled 'val'"):
        group.add_train("val", input_sources=_train_bindings(s), losses=[s.loss])
    with pytest.raises(ValueError, match="labelled 'x'"):
        PhaseGroup("dup", [_eval(s, "x"), _eval(s, "x")])
    # add_items is all-or-nothing
    with pytest.raises(ValueError, match="labelled 'b'"):
        group.add_items([_eval(s, "a"), _eval(s, "b"), _eval(s, "b")])
    assert group.all[0].label == "val"
    assert len(group) == 1
    # the same label may be reused in a different (nested) group
    group.add_group(PhaseGroup("inner", [_eval(s, "val")]))
    assert [p.label for p in group.flatten()] == ["val", "val"]


def test_type_errors_and_cycles(linear_setup) -> None:
    s = linear_setup()
    phase = _eval(s)
    group = PhaseGroup("g")
    with pytest.raises(TypeError, match="non-empty string"):
        PhaseGroup("")
    with pytest.raises(TypeError, match="non-empty string"):
        PhaseGroup(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Wrap a single item"):
        PhaseGroup("g", phase)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="add_group"):
        group.add_phase(PhaseGroup("sub"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="add_phase"):
        group.add_group(phase)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got str"):
        group.add_item("train")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iterable"):
        group.add_items(phase)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contain itself"):
        group.add_group(group)
    outer = PhaseGroup("outer", [PhaseGroup("middle", [group])])
    with pytest.raises(ValueError, match="contain itself"):
        group.add_group(outer)
    assert len(group) == 0


def test_getters_by_label_and_position(linear_setup) -> None:
    s = linear_setup()
    train, val, sub = _train(s), _eval(s), PhaseGroup("sub")
    group = PhaseGroup("g", [train, sub, val])
    assert group.get_phase("val") is val
    assert group.get_phase(0) is train
    assert group.get_phase(-1) is val
    assert group.get_train_phase(0) is train
    assert group.get_eval_phase("val") is val
    assert group.get_eval_phase(2) is val
    assert group.get_group("sub") is sub
    assert group.get_group(1) is sub
    with pytest.raises(TypeError, match="is a PhaseGroup"):
        group.get_phase(1)
    with pytest.raises(TypeError, match="not a TrainPhase"):
        group.get_train_phase("val")
    with pytest.raises(TypeError, match="not a EvalPhase"):
        group.get_eval_phase("train")
    with pytest.raises(TypeError, match="not a FitPhase"):
        group.get_fit_phase("train")
    with pytest.raises(TypeError, match="not a PhaseGroup"):
        group.get_group("train")
    with pytest.raises(KeyError, match=r"no item labelled 'nope'.*'train', 'sub', 'val'"):
        group.get_phase("nope")
    with pytest.raises(KeyError, match="no item at position 3; it holds 3"):
        group.get_phase(3)
    with pytest.raises(KeyError, match="position -4"):
        group.get_group(-4)
    with pytest.raises(TypeError, match="position"):
        group.get_phase(True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="position"):
        group.get_phase(1.0)  # type: ignore[arg-type]


def test_remove_by_position_label_and_instance(linear_setup) -> None:
    s = linear_setup()
    a, b, c, d = (_eval(s, x) for x in "abcd")
    g1, g2 = PhaseGroup("g1"), PhaseGroup("g2")
    group = PhaseGroup("g", [a, g1, b, g2, c, d])
    assert group.remove_phase("a") is group
    assert [i.label for i in group.all] == ["g1", "b", "g2", "c", "d"]
    group.remove_group(0)
    group.remove_phase(b)
    assert [i.label for i in group.all] == ["g2", "c", "d"]
    with pytest.raises(TypeError, match="not a PhaseGroup"):
        group.remove_group("c")
    with pytest.raises(TypeError, match="is a PhaseGroup"):
        group.remove_phase("g2")
    with pytest.raises(KeyError, match="not registered"):
        group.remove_item(a)  # already removed: instances match by identity
    group.remove_item(g2)
    group.remove_item(-1)
    assert group.all == [c]
    group.add_items([a, b, d])
    # positions refer to the items before any removal; nothing is removed if one entry is unknown
    with pytest.raises(KeyError, match="'zzz'"):
        group.remove_items([0, "zzz"])
    assert [i.label for i in group.all] == ["c", "a", "b", "d"]
    assert group.remove_items([0, 1, "d"]) is group
    assert group.all == [b]
    with pytest.raises(TypeError, match="list of positions"):
        group.remove_items("b")  # type: ignore[arg-type]
    assert group.clear() is group
    assert group.all == []
    assert group.flatten() == []


def test_config_round_trip_with_nested_groups(linear_setup) -> None:
    s = linear_setup()
    inner = PhaseGroup("inner", [_eval(s, "val"), PhaseGroup("deep", [_train(s, "finetune", n_epochs=2)])])
    bindings = [InputBinding.for_evaluation(node=s.head, split="train")]
    group = PhaseGroup("top", [_train(s, "train", n_epochs=3), inner]).add_fit("fit", input_sources=bindings)
    config = group.get_config()
    assert config["kind"] == "phase_group"
    assert config["label"] == "top"
    assert [c["label"] for c in config["items"]] == ["train", "inner", "fit"]
    rebuilt = PhaseGroup.from_config(config)
    assert rebuilt.get_config() == config
    assert [type(p).__name__ for p in rebuilt.flatten()] == ["TrainPhase", "EvalPhase", "TrainPhase", "FitPhase"]
    assert [p.label for p in rebuilt.flatten()] == ["train", "val", "finetune", "fit"]
    assert rebuilt.get_group("inner").get_group("deep").get_train_phase("finetune").n_epochs == 2
    assert rebuilt.get_train_phase("train").n_epochs == 3
    assert PhaseGroup.from_config(PhaseGroup("empty").get_config()).all == []


def test_config_errors(linear_setup) -> None:
    s = linear_setup()
    with pytest.raises(TypeError, match="is a dict"):
        PhaseGroup.from_config(["top"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Not a PhaseGroup config"):
        PhaseGroup.from_config({"label": "x", "items": []})
    bad_item = {**_eval(s).get_config(), "phase_kind": "bogus"}
    with pytest.raises(ValueError, match=r"Unknown phase_kind 'bogus'.*'eval', 'fit', 'train'"):
        PhaseGroup.from_config({"kind": "phase_group", "label": "x", "items": [bad_item]})
    assert type(phase_from_config(_eval(s).get_config())) is EvalPhase
    with pytest.raises(TypeError, match="phase config is a dict"):
        phase_from_config("eval")  # type: ignore[arg-type]
