from __future__ import annotations

import subprocess
import sys

import pytest

import modularml as mml
from modularml.cli import main
from modularml.errors import NotRegisteredError, PluginConflictError, PluginError
from modularml.plugins import LOAD_PLUGINS_ENV, PluginManager, hookimpl, use_plugin_manager

BROKEN = """
raise ImportError("needs a library that is not installed: missinglib")
"""

GOOD = """
from modularml import hookimpl

class Doubler:
    def fit(self, X, y=None):
        return self
    def transform(self, X):
        return X * 2

@hookimpl
def register_scalers(register):
    register("Doubler", Doubler)
"""

TWIN = """
from modularml import hookimpl

@hookimpl
def register_scalers(register):
    register("Doubler", object)
"""


def test_builtins_register_through_the_hooks(manager: PluginManager) -> None:
    from modularml.executors import LocalExecutor

    entry = manager.registry("executors").entry("local")
    assert entry.obj == "modularml.executors:LocalExecutor", "built-ins register by import path"
    assert manager.registry("executors").get("local") is LocalExecutor
    assert entry.plugin == "modularml"
    assert entry.distribution == "modularml"
    builtin = manager.plugins()[0]
    assert builtin.name == "modularml"
    assert builtin.contributions["executors"] == ["local"]


def test_entry_points_are_discovered_once_and_lazily(fake_distribution, monkeypatch) -> None:
    fake_distribution("good-plugin", {"good": "good_mod"}, {"good_mod": GOOD})
    manager = PluginManager()
    assert "good_mod" not in sys.modules, "constructing the manager must not load entry points"
    assert manager.registry("scalers").get("Doubler").__name__ == "Doubler"
    assert "good_mod" in sys.modules
    loaded = sys.modules["good_mod"]
    manager.registry("scalers")
    manager.plugins()
    assert sys.modules["good_mod"] is loaded
    record = next(r for r in manager.plugins() if r.name == "good")
    assert (record.distribution, record.version, record.status) == ("good-plugin", "1.0", "loaded")
    assert record.contributions == {"scalers": ["Doubler"]}


def test_broken_plugin_is_recorded_not_fatal(fake_distribution) -> None:
    fake_distribution("broken-plugin", {"broken": "broken_mod"}, {"broken_mod": BROKEN}, version="2.3")
    fake_distribution("good-plugin", {"good": "good_mod"}, {"good_mod": GOOD})
    manager = PluginManager()
    assert "Doubler" in manager.registry("scalers")
    (failure,) = manager.failures()
    assert failure.name == "broken"
    assert failure.distribution == "broken-plugin"
    assert failure.version == "2.3"
    assert failure.error == "ImportError: needs a library that is not installed: missinglib"
    with pytest.raises(NotRegisteredError, match=r"broken \(broken-plugin\): ImportError: needs a library"):
        manager.registry("scalers").get("Tripler")


def test_broken_plugin_keeps_import_and_cli_working(fake_distribution) -> None:
    site = fake_distribution("broken-plugin", {"broken": "broken_mod"}, {"broken_mod": BROKEN})
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from modularml.cli import main; sys.exit(main(['plugins']))"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "broken  (broken-plugin 1.0)  FAILED: ImportError: needs a library" in result.stdout
    assert "executors: local" in result.stdout
    strict = subprocess.run(
        [sys.executable, "-m", "modularml", "plugins", "--strict"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": ""},
        check=False,
    )
    assert strict.returncode == 1
    assert "FAILED" in strict.stdout


def test_hook_that_raises_is_recorded_and_contributes_nothing(manager: PluginManager) -> None:
    class HalfBroken:
        @hookimpl
        def register_scalers(self, register):
            register("Early", object)
            raise RuntimeError("oops in the middle")

    manager.register(HalfBroken(), name="half", distribution="half-dist")
    assert "Early" not in manager.registry("scalers")
    (failure,) = manager.failures()
    assert failure.name == "half"
    assert "RuntimeError in a hook: oops in the middle" in failure.error


def test_duplicate_name_names_both_distributions(fake_distribution) -> None:
    fake_distribution("good-plugin", {"good": "good_mod"}, {"good_mod": GOOD})
    fake_distribution("twin-plugin", {"twin": "twin_mod"}, {"twin_mod": TWIN})
    manager = PluginManager()
    with pytest.raises(PluginConflictError) as info:
        manager.registry("scalers")
    message = str(info.value)
    assert "'Doubler'" in message
    assert "'good-plugin'" in message
    assert "'twin-plugin'" in message
    assert LOAD_PLUGINS_ENV in message


def test_duplicate_is_reported_by_the_cli(fake_distribution, capsys) -> None:
    fake_distribution("good-plugin", {"good": "good_mod"}, {"good_mod": GOOD})
    fake_distribution("twin-plugin", {"twin": "twin_mod"}, {"twin_mod": TWIN})
    with use_plugin_manager(PluginManager()):
        assert main(["plugins"]) == 1
    assert "contributed twice" in capsys.readouterr().err


def test_load_filter_environment_variable(fake_distribution, monkeypatch) -> None:
    fake_distribution("good-plugin", {"good": "good_mod"}, {"good_mod": GOOD})
    fake_distribution("twin-plugin", {"twin": "twin_mod"}, {"twin_mod": TWIN})
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "good-plugin")
    manager = PluginManager()
    assert manager.registry("scalers").entry("Doubler").distribution == "good-plugin"
    twin = next(r for r in manager.plugins() if r.name == "twin")
    assert twin.status == "disabled"
    assert "twin_mod" not in sys.modules
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "")
    nothing = PluginManager()
    assert "Doubler" not in nothing.registry("scalers")
    assert "local" in nothing.registry("executors"), "built-ins are always loaded"


def test_registering_twice_under_one_name_is_refused(manager: PluginManager) -> None:
    class Plugin:
        pass

    manager.register(Plugin(), name="p")
    with pytest.raises(PluginError, match="already registered"):
        manager.register(Plugin(), name="p")
    manager.unregister("p")
    with pytest.raises(PluginError, match="No plugin named 'p'"):
        manager.unregister("p")


def test_misspelled_hook_is_refused(manager: PluginManager) -> None:
    class Typo:
        @hookimpl
        def register_scaler(self, register):  # missing the final "s"
            pass

    with pytest.raises(PluginError, match="unknown hook 'register_scaler'"):
        manager.register(Typo(), name="typo")


def test_hook_with_wrong_arguments_is_refused(manager: PluginManager) -> None:
    class Wrong:
        @hookimpl
        def register_scalers(self, register, extra):
            pass

    with pytest.raises(PluginError, match="does not match the hook specifications"):
        manager.register(Wrong(), name="wrong")


def test_registries_rebuild_after_register_and_unregister(manager: PluginManager) -> None:
    class Plugin:
        @hookimpl
        def register_splitters(self, register):
            register("EveryOther", object)

    assert "EveryOther" not in manager.registry("splitters")
    manager.register(Plugin(), name="p")
    assert "EveryOther" in manager.registry("splitters")
    manager.unregister("p")
    assert "EveryOther" not in manager.registry("splitters")


def test_unknown_registry_kind(manager: PluginManager) -> None:
    with pytest.raises(ValueError, match="Unknown registry kind 'scaler'"):
        manager.registry("scaler")


def test_lookup_is_case_insensitive_when_unique(manager: PluginManager) -> None:
    class Plugin:
        @hookimpl
        def register_callbacks(self, register):
            register("EarlyStop", int)
            register("Other", str)

    manager.register(Plugin(), name="p")
    callbacks = manager.registry("callbacks")
    assert callbacks.get("earlystop") is int
    names = callbacks.names()
    assert names == sorted(names)
    # the core's own and the plugin's (installed logger plugins, such as modularml-mlflow, add theirs)
    assert {"CSVLogger", "EarlyStop", "Other"} <= set(names)
    assert set(names) - {"CSVLogger", "EarlyStop", "Other"} <= {"MLflowLogger", "TensorBoardLogger"}
    with pytest.raises(
        NotRegisteredError, match=r"No callback named 'Late' is registered\. Available: \['CSVLogger', 'EarlyStop'"
    ):
        callbacks.get("Late")


def test_missing_sklearn_scaler_says_what_to_install(manager: PluginManager) -> None:
    if mml.Backend.SCIKIT.is_installed:
        pytest.skip("the sklearn plugin is installed here")
    with pytest.raises(NotRegisteredError, match=r'pip install "modularml\[sklearn\]"'):
        manager.registry("scalers").get("StandardScaler")


def test_invalid_registrations_are_refused(manager: PluginManager) -> None:
    cases = {
        "bad name": lambda register: register("has space", object),
        "no backend": lambda register: register("Net", object),
    }
    for label, body in cases.items():

        class Plugin:
            @hookimpl
            def register_models(self, register, body=body):
                body(register)

        name = label.replace(" ", "_")
        manager.register(Plugin(), name=name)
        manager.registry("models")
        failure = next(r for r in manager.plugins() if r.name == name)
        assert failure.status == "failed", label
        manager.unregister(name)
    messages = []

    class Unscoped:
        @hookimpl
        def register_scalers(self, register):
            register("S", object, backend="torch")

    manager.register(Unscoped(), name="unscoped")
    manager.registry("scalers")
    messages.append(next(r for r in manager.plugins() if r.name == "unscoped").error)
    assert "are not backend-scoped" in messages[0]


def test_installed_plugin_with_wrong_hook_signature_is_recorded(fake_distribution) -> None:
    source = """
from modularml import hookimpl

@hookimpl
def register_scalers(register, unexpected):
    pass
"""
    fake_distribution("odd-plugin", {"odd": "odd_mod"}, {"odd_mod": source})
    manager = PluginManager()
    (failure,) = manager.failures()
    assert (failure.name, failure.distribution) == ("odd", "odd-plugin")
    assert "unexpected" in failure.error
    assert "local" in manager.registry("executors")
