from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

import modularml as mml
from modularml.backends import Backend, NumpyTensorOps, normalize_device, normalize_pad_width, pad_index_map
from modularml.errors import BackendNotInstalledError, BackendNotSupportedError, DeviceError
from modularml.plugins import PluginManager, hookimpl, use_plugin_manager
from modularml.testing import BackendConformance


@pytest.fixture
def bare_manager() -> PluginManager:
    """A manager that loads no entry points: no backend is installed."""
    manager = PluginManager(discover=False)
    with use_plugin_manager(manager):
        yield manager


def test_enum_like_members() -> None:
    assert Backend.TORCH == "torch"
    assert Backend.TENSORFLOW.value == "tensorflow"
    assert Backend.SCIKIT.name == "SCIKIT"
    assert repr(Backend.TORCH) == "<Backend.TORCH: 'torch'>"
    assert mml.Backend is Backend


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("torch", "torch"),
        ("PyTorch", "torch"),
        ("tensorflow", "tensorflow"),
        ("tf", "tensorflow"),
        ("TF", "tensorflow"),
        ("scikit", "scikit"),
        ("sklearn", "scikit"),
        ("scikit-learn", "scikit"),
    ],
)
def test_strings_resolve_even_when_not_installed(bare_manager, alias: str, expected: str) -> None:
    backend = Backend(alias)
    assert backend == expected
    assert Backend(backend) is backend


def test_uninstalled_backend_says_what_to_install(bare_manager) -> None:
    for alias, extra, dist in [("torch", "torch", "modularml-torch"), ("tf", "tf", "modularml-tf")]:
        with pytest.raises(BackendNotInstalledError) as info:
            mml.get_backend(alias)
        assert f'pip install "modularml[{extra}]"' in str(info.value)
        assert dist in str(info.value)
        assert isinstance(info.value, ImportError)
        assert isinstance(info.value, ValueError)
    assert not Backend.SCIKIT.is_installed


def test_unknown_backend_is_refused(bare_manager) -> None:
    with pytest.raises(BackendNotSupportedError, match=r"Unknown backend 'jax'.*Installed backends: none"):
        Backend("jax")
    with pytest.raises(BackendNotSupportedError, match="got 3"):
        Backend(3)


def test_backend_is_a_string_for_json_pickle_and_copy() -> None:
    assert json.dumps({"backend": Backend.TORCH}) == '{"backend": "torch"}'
    assert pickle.loads(pickle.dumps(Backend.TENSORFLOW)) is not None
    assert pickle.loads(pickle.dumps(Backend.TENSORFLOW)) == Backend.TENSORFLOW
    assert type(copy.deepcopy(Backend.SCIKIT)) is Backend


def test_backend_of_never_claims_numpy(bare_manager) -> None:
    assert mml.backend_of(np.zeros(3)) is None
    assert mml.backend_of(np.float32(1.0)) is None
    assert mml.backend_of([1, 2]) is None


class _NumpyBackend(NumpyTensorOps):
    name = "numpyref"


class _NumpyPlugin:
    @hookimpl
    def register_backends(self, register):
        register("numpyref", _NumpyBackend, aliases=("npref",), formats=("npref",))


@pytest.fixture(scope="module", autouse=True)
def _numpy_reference_backend():
    manager = PluginManager()
    manager.register(_NumpyPlugin(), name="numpyref-plugin")
    with use_plugin_manager(manager):
        yield


class TestNumpyReferenceConformance(BackendConformance):
    """The core's numpy ops pass the kit (the kit itself is exercised without any framework)."""

    backend = "numpyref"
    devices = ("cpu",)  # chosen at collection time, before the fixture registers the backend

    def test_framework_is_imported_only_on_first_use(self) -> None:
        pytest.skip("registered in-process by this test module, not through an entry point")

    def test_resolving_does_not_create_the_implementation(self) -> None:
        pytest.skip("registered in-process by this test module, not through an entry point")


@pytest.mark.parametrize(
    ("device", "expected"),
    [(None, "cpu"), ("CPU", "cpu"), ("cuda", "cuda:0"), ("gpu:2", "cuda:2"), ("cuda:1", "cuda:1"), ("mps", "mps")],
)
def test_normalize_device(device, expected: str) -> None:
    assert normalize_device(device) == expected


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:1", "mps:3", ""])
def test_normalize_device_rejects(device: str) -> None:
    with pytest.raises(DeviceError, match="device"):
        normalize_device(device)


def test_pad_width_forms() -> None:
    assert normalize_pad_width(2, 2) == ((2, 2), (2, 2))
    assert normalize_pad_width((1, 3), 2) == ((1, 3), (1, 3))
    assert normalize_pad_width([(1, 0), (0, 2)], 2) == ((1, 0), (0, 2))
    assert normalize_pad_width([(1, 2)], 3) == ((1, 2), (1, 2), (1, 2))
    with pytest.raises(ValueError, match="integers"):
        normalize_pad_width(1.5, 1)


def test_pad_index_maps() -> None:
    np.testing.assert_array_equal(pad_index_map(3, 2, 2, "reflect"), [2, 1, 0, 1, 2, 1, 0])
    np.testing.assert_array_equal(pad_index_map(3, 2, 1, "replicate"), [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(pad_index_map(3, 4, 1, "circular"), [2, 0, 1, 2, 0, 1, 2, 0])
    with pytest.raises(ValueError, match="empty axis"):
        pad_index_map(0, 1, 0, "circular")
    with pytest.raises(ValueError, match="not an index map"):
        pad_index_map(3, 1, 1, "constant")


def test_get_backend_lookups_are_cached_per_plugin_manager(bare_manager) -> None:
    from modularml.backends import get_backend

    with pytest.raises(BackendNotInstalledError):
        get_backend("torch")  # nothing installed in this manager: never served from another manager's cache
    with pytest.raises(BackendNotSupportedError):
        get_backend("no-such-backend")


def test_get_backend_returns_the_same_implementation_by_name_alias_and_backend() -> None:
    from modularml.backends import get_backend

    if not Backend.TORCH.is_installed:
        pytest.skip("needs the torch backend")
    first = get_backend("torch")
    assert get_backend("torch") is first
    assert get_backend(Backend.TORCH) is first
    assert get_backend("pytorch") is first
