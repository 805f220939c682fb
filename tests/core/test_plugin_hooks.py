"""One test per hook in modularml.plugins.hookspecs (and a test that checks there is one)."""

from __future__ import annotations

import inspect

import pytest

import modularml as mml
from modularml.errors import PluginConflictError
from modularml.plugins import KINDS, PluginManager, hookimpl, hookspecs


def _plugin(hook: str, body) -> object:
    """A plugin object implementing one hook with ``body(register)``."""

    def implementation(register):
        body(register)

    implementation.__name__ = hook
    return type("TestPlugin", (), {hook: staticmethod(hookimpl(implementation))})()


def _contribute(manager: PluginManager, kind: str, body, name: str = "test-plugin") -> None:
    manager.register(_plugin(f"register_{kind}", body), name=name, distribution=f"{name}-dist")


class FakeBackend(mml.backends.NumpyTensorOps):
    name = "fakenp"


def test_every_hook_has_a_test() -> None:
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("register_")]
    assert sorted(hooks) == sorted(f"register_{kind}" for kind in KINDS)
    tests = {n for n in globals() if n.startswith("test_hook_")}
    missing = [hook for hook in hooks if f"test_hook_{hook}" not in tests]
    assert not missing, f"hooks without a test: {missing}"


def test_every_hook_has_a_docstring() -> None:
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("register_"):
            assert function.__doc__, name
            assert "register(" in function.__doc__, name


def test_hook_register_backends(manager: PluginManager) -> None:
    created = []

    def factory():
        created.append(1)
        return FakeBackend()

    _contribute(
        manager,
        "backends",
        lambda register: register("FakeNP", factory, aliases=("fnp",), formats=("fake",), description="test"),
    )
    backend = mml.Backend("fnp")
    assert backend == "fakenp"
    assert mml.Backend("FAKENP") is not None
    assert backend.info.distribution == "test-plugin-dist"
    assert backend.info.formats == ("fake",)
    assert not created, "resolving a name must not create the implementation"
    impl = mml.get_backend("fakenp")
    assert isinstance(impl, FakeBackend)
    assert mml.get_backend(backend) is impl
    assert created == [1]
    assert mml.backends.backend_for_format("fake") == "fakenp"
    assert [b for b in mml.Backend.installed() if b == "fakenp"] == ["fakenp"]


def test_hook_register_backends_import_path_and_alias_clash(manager: PluginManager) -> None:
    _contribute(manager, "backends", lambda register: register("fakenp", f"{__name__}:FakeBackend"))
    assert isinstance(mml.get_backend("fakenp"), FakeBackend)
    _contribute(manager, "backends", lambda register: register("other", FakeBackend, aliases=("fakenp",)), name="x")
    with pytest.raises(PluginConflictError, match=r"backend name 'fakenp'.*'test-plugin-dist'.*'x-dist'"):
        mml.Backend("other")


def _backend_scoped(manager: PluginManager, kind: str) -> None:
    class TorchThing:
        pass

    class TfThing:
        pass

    _contribute(manager, kind, lambda register: register("Shared", TorchThing, backend="pytorch"), name="a")
    _contribute(manager, kind, lambda register: register("Shared", TfThing, backend="tf"), name="b")
    registry = manager.registry(kind)
    assert registry.get("Shared", backend="torch") is TorchThing
    assert registry.get("Shared", backend=mml.Backend.TENSORFLOW) is TfThing
    assert registry.entry("Shared", backend="tensorflow").key == ("tensorflow", "Shared")
    with pytest.raises(ValueError, match="needs a backend"):
        registry.get("Shared")
    _contribute(manager, kind, lambda register: register("Shared", object, backend="torch"), name="c")
    with pytest.raises(PluginConflictError, match=r"'Shared' for backend 'torch'.*'a-dist'.*'c-dist'"):
        manager.registry(kind)


def test_hook_register_models(manager: PluginManager) -> None:
    _backend_scoped(manager, "models")


def test_hook_register_losses(manager: PluginManager) -> None:
    _backend_scoped(manager, "losses")


def test_hook_register_optimizers(manager: PluginManager) -> None:
    _backend_scoped(manager, "optimizers")


def _by_name(manager: PluginManager, kind: str) -> None:
    class Component:
        pass

    _contribute(manager, kind, lambda register: register("Component", Component))
    entry = manager.registry(kind).entry("Component")
    assert entry.obj is Component
    assert entry.backend is None
    assert (entry.plugin, entry.distribution) == ("test-plugin", "test-plugin-dist")
    assert next(r for r in manager.plugins() if r.name == "test-plugin").contributions == {kind: ["Component"]}


def test_hook_register_scalers(manager: PluginManager) -> None:
    _by_name(manager, "scalers")


def test_hook_register_samplers(manager: PluginManager) -> None:
    _by_name(manager, "samplers")


def test_hook_register_splitters(manager: PluginManager) -> None:
    _by_name(manager, "splitters")


def test_hook_register_callbacks(manager: PluginManager) -> None:
    _by_name(manager, "callbacks")


def test_hook_register_executors(manager: PluginManager) -> None:
    _by_name(manager, "executors")
    local = manager.registry("executors").get("local")(show_progress=False)
    assert local.map(lambda x: x * x, [3, 1, 2]) == [9, 1, 4]
    assert local.map(str, [], show_progress=True, description="nothing") == []
