from __future__ import annotations

import sys
import types

import pytest

from modularml.context import ExperimentContext, RegistrationPolicy
from modularml.context import policy as policy_module
from modularml.errors import InvalidArgumentError, ModularMLError
from modularml.utils import environment


def test_members_are_strings_equal_to_their_values() -> None:
    assert [member.value for member in RegistrationPolicy] == ["error", "overwrite", "overwrite_warn", "no_register"]
    assert RegistrationPolicy.OVERWRITE_WARN == "overwrite_warn"
    assert str(RegistrationPolicy.NO_REGISTER) == "no_register"
    assert isinstance(RegistrationPolicy.ERROR, str)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("error", RegistrationPolicy.ERROR),
        ("OVERWRITE", RegistrationPolicy.OVERWRITE),
        (" Overwrite_Warn ", RegistrationPolicy.OVERWRITE_WARN),
        ("overwrite-warn", RegistrationPolicy.OVERWRITE_WARN),
        ("No_Register", RegistrationPolicy.NO_REGISTER),
        (RegistrationPolicy.OVERWRITE, RegistrationPolicy.OVERWRITE),
    ],
)
def test_accepts_names_case_insensitively(value: str, expected: RegistrationPolicy) -> None:
    assert RegistrationPolicy(value) is expected


@pytest.mark.parametrize("value", ["replace", "", 3, None])
def test_unknown_policy_raises_value_error_listing_options(value: object) -> None:
    with pytest.raises(ValueError, match="'error', 'overwrite', 'overwrite_warn', 'no_register'") as info:
        RegistrationPolicy(value)
    assert isinstance(info.value, InvalidArgumentError)
    assert isinstance(info.value, ModularMLError)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("in_notebook", "expected"), [(False, "error"), (True, "overwrite_warn")])
def test_default_depends_on_notebook(monkeypatch: pytest.MonkeyPatch, in_notebook: bool, expected: str) -> None:
    monkeypatch.setattr(policy_module, "IN_NOTEBOOK", in_notebook)
    assert RegistrationPolicy.default() == expected
    assert ExperimentContext().registration_policy == expected


def _fake_ipython(monkeypatch: pytest.MonkeyPatch, get_ipython: object) -> None:
    module = types.ModuleType("IPython")
    module.get_ipython = get_ipython  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)


def _shell(name: str, module: str = "ipykernel.zmqshell") -> object:
    return type(name, (), {"__module__": module})()


def test_no_ipython_is_no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert environment.in_notebook() is False
    assert "IPython" not in sys.modules  # detection never imports it


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        (_shell("ZMQInteractiveShell"), True),
        (_shell("Shell", "google.colab._shell"), True),
        (_shell("TerminalInteractiveShell", "IPython.terminal.interactiveshell"), False),
        (None, False),
    ],
)
def test_notebook_detection_from_shell_class(monkeypatch: pytest.MonkeyPatch, shell: object, expected: bool) -> None:
    _fake_ipython(monkeypatch, lambda: shell)
    assert environment.in_notebook() is expected


def test_broken_ipython_is_no_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("half initialised")

    _fake_ipython(monkeypatch, broken)
    assert environment.in_notebook() is False
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))  # no get_ipython at all
    assert environment.in_notebook() is False


def test_in_notebook_constant_is_false_under_pytest() -> None:
    assert environment.IN_NOTEBOOK is False
