"""The scaler registry: built-ins registered through the hook, plugins, import paths, install hints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import modularml as mml
from modularml.errors import PluginError
from modularml.plugins import PluginManager, hookimpl, use_plugin_manager
from modularml.scalers import (
    Absolute,
    LazyClass,
    Negate,
    PerSampleMinMaxScaler,
    PerSampleZeroStart,
    Scaler,
    SegmentedScaler,
    supported_scalers,
)

CORE_SCALERS = {
    "Absolute": Absolute,
    "Negate": Negate,
    "PerSampleMinMaxScaler": PerSampleMinMaxScaler,
    "PerSampleZeroStart": PerSampleZeroStart,
    "SegmentedScaler": SegmentedScaler,
}


def test_core_scalers_are_registered_by_the_builtin_plugin() -> None:
    with use_plugin_manager(PluginManager(discover=False)) as manager:
        entries = {e.name: e for e in manager.registry("scalers")}
        assert set(entries) == set(CORE_SCALERS)
        assert {e.distribution for e in entries.values()} == {"modularml"}
        assert Scaler.get_supported_scalers() == CORE_SCALERS
        assert dict(mml.supported_scalers) == CORE_SCALERS


def test_supported_scalers_is_live_and_shows_import_paths_lazily() -> None:
    class Plugin:
        @staticmethod
        @hookimpl
        def register_scalers(register) -> None:
            register("LaterScaler", "a_module_nobody_imported_xyz:LaterScaler")

    manager = PluginManager(discover=False)
    with use_plugin_manager(manager):
        assert "LaterScaler" not in supported_scalers
        manager.register(Plugin(), name="later", distribution="later-dist")
        shown = supported_scalers["LaterScaler"]
        assert isinstance(shown, LazyClass)
        assert repr(shown) == "a_module_nobody_imported_xyz.LaterScaler"
        assert not shown.is_imported
        assert "a_module_nobody_imported_xyz" not in sys.modules
        assert "'LaterScaler': a_module_nobody_imported_xyz.LaterScaler" in repr(supported_scalers)
        with pytest.raises(
            PluginError, match=r"'LaterScaler' of plugin 'later' \(distribution 'later-dist'\).*cannot be imported"
        ):
            Scaler("LaterScaler")


def test_a_plugin_scaler_by_import_path_is_imported_on_first_use(fake_distribution) -> None:
    fake_distribution(
        "lazy-scalers",
        {"lazy_scalers": "lazy_scalers_plugin"},
        {
            "lazy_scalers_plugin": """
                from modularml.plugins import hookimpl

                @hookimpl
                def register_scalers(register):
                    register("TimesTwo", "lazy_scalers_impl:TimesTwo")
            """,
            "lazy_scalers_impl": """
                class TimesTwo:
                    def __init__(self, factor=2.0):
                        self.factor = factor
                    def fit(self, X, y=None):
                        self.n_features_in_ = X.shape[1]
                        return self
                    def transform(self, X):
                        return X * self.factor
                    def inverse_transform(self, X):
                        return X / self.factor
            """,
        },
    )
    with use_plugin_manager(PluginManager()):
        assert "TimesTwo" in mml.supported_scalers
        assert "lazy_scalers_impl" not in sys.modules
        scaler = Scaler("TimesTwo", scaler_kwargs={"factor": 3.0})
        assert "lazy_scalers_impl" in sys.modules
        assert scaler.get_config() == {"scaler": "TimesTwo", "scaler_kwargs": {"factor": 3.0}}
        assert scaler.fit_transform([[1.0, 2.0]]).tolist() == [[3.0, 6.0]]
        assert Scaler(type(scaler.scaler)).scaler_name == "TimesTwo"  # the class is recognised by its name


def test_missing_sklearn_scaler_says_what_to_install() -> None:
    with use_plugin_manager(PluginManager(discover=False)):
        for name in ("StandardScaler", "MinMaxScaler", "PowerTransformer"):
            with pytest.raises(ValueError, match=rf"No scaler named '{name}'") as info:
                Scaler(name)
            assert 'pip install "modularml[sklearn]"' in str(info.value)
        with pytest.raises(ValueError, match='pip install "modularml\\[sklearn\\]"'):
            mml.FeatureSet.from_dict("x", {"a": [1.0, 2.0], "b": [0.0, 1.0]}, ["a"], ["b"]).fit_transform(
                "RobustScaler", domain="features"
            )


def test_transforms_module_reexports_the_core_scalers() -> None:
    from modularml import transforms

    assert transforms.Absolute is Absolute
    assert transforms.SegmentedScaler is SegmentedScaler
    assert transforms.Scaler is Scaler


def test_using_scalers_imports_no_framework() -> None:
    script = textwrap.dedent(
        """
        import sys, modularml as mml
        repr(mml.supported_scalers)
        mml.get_plugin_manager().plugins()
        mml.Scaler("Negate").fit([[1.0]])
        print(",".join(m for m in ("torch", "tensorflow", "sklearn") if m in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
