from __future__ import annotations

import uuid

import pytest

import modularml
from modularml.context import ExperimentContext, ExperimentNode
from modularml.errors import InvalidLabelError, ModularMLError


class Widget(ExperimentNode):
    pass


def test_package_exports() -> None:
    assert modularml.ExperimentContext is ExperimentContext
    assert modularml.ExperimentNode is ExperimentNode
    assert {"ExperimentContext", "ExperimentNode", "RegistrationPolicy"} <= set(modularml.__all__)


def test_label_and_generated_uuid4_node_id(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    assert node.label == "alpha"
    assert uuid.UUID(node.node_id).version == 4
    assert ExperimentNode("beta").node_id != node.node_id


def test_explicit_node_id_is_kept() -> None:
    assert ExperimentNode("alpha", node_id="fixed-id").node_id == "fixed-id"


@pytest.mark.parametrize("node_id", ["", 7])
def test_invalid_node_id(node_id: object) -> None:
    with pytest.raises(ValueError, match="node_id"):
        ExperimentNode("alpha", node_id=node_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("label", ["a.b", "a b", "a/b", "a\\b", "a:b"])
def test_label_with_forbidden_character_is_refused(ctx: ExperimentContext, label: str) -> None:
    with pytest.raises(ValueError, match="may not contain") as info:
        ExperimentNode(label)
    assert isinstance(info.value, InvalidLabelError)
    assert isinstance(info.value, ModularMLError)
    assert repr(label) in str(info.value)
    assert "'a_b'" in str(info.value)  # suggests a fix
    assert ctx.available_nodes == {}


@pytest.mark.parametrize("label", ["", None, 3])
def test_label_must_be_a_non_empty_string(label: object) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        ExperimentNode(label)  # type: ignore[arg-type]


def test_register_true_registers_in_active_context(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    assert ctx.available_nodes == {node.node_id: node}


def test_register_false_does_not_register(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha", register=False)
    assert ctx.available_nodes == {}
    ExperimentNode("alpha")  # no collision with an unregistered node
    assert node.label == "alpha"


def test_registers_in_whichever_context_is_active(ctx: ExperimentContext) -> None:
    other = ExperimentContext(registration_policy="error")
    with other.activate():
        node = ExperimentNode("alpha")
    assert other.has_node(node_id=node.node_id)
    assert not ctx.has_node(node_id=node.node_id)


def test_renaming_a_registered_node_goes_through_the_context(ctx: ExperimentContext) -> None:
    node = ExperimentNode("alpha")
    ExperimentNode("beta")
    node.label = "gamma"
    assert node.label == "gamma"
    assert ctx.get_node(label="gamma") is node
    with pytest.raises(ValueError, match="'beta'"):
        node.label = "beta"
    assert node.label == "gamma"
    with pytest.raises(ValueError, match="may not contain"):
        node.label = "bad.label"
    assert node.label == "gamma"


def test_renaming_an_unregistered_node_only_validates() -> None:
    ExperimentNode("beta")
    node = ExperimentNode("alpha", register=False)
    node.label = "beta"  # not registered here, so no collision check
    assert node.label == "beta"
    with pytest.raises(ValueError, match="may not contain"):
        node.label = "a:b"


def test_repr_names_class_label_and_id() -> None:
    node = Widget("alpha", node_id="id-1")
    assert repr(node) == "Widget(label='alpha', node_id='id-1')"
