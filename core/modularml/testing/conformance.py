"""Parametrised tests that any backend runs against itself.

Subclass :class:`BackendConformance`, set ``backend`` to the backend's name, and pytest
collects every test below for it. Tests run on every device the backend reports as available
(so on a CUDA machine they run on ``"cuda:0"`` too); set ``devices`` to restrict them.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import numpy as np
import pytest

from modularml.backends import Backend, BackendProtocol, get_backend
from modularml.backends.padding import PAD_MODES
from modularml.errors import DeviceError

__all__ = ["BackendConformance"]

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
SHAPES = [(), (5,), (3, 4), (2, 3, 4)]


def _sample(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    return (rng.standard_normal(shape) * 10).astype(dtype)


class BackendConformance:
    """The protocol's behaviour, checked against one backend.

    Attributes:
        backend: Name (or alias) of the backend under test.
        devices: Devices to test on; ``None`` means every device the backend reports.
    """

    backend: ClassVar[str]
    devices: ClassVar[tuple[str, ...] | None] = None

    @pytest.fixture
    def impl(self) -> Any:
        return get_backend(self.backend)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "device" in metafunc.fixturenames:
            devices = self.devices if self.devices is not None else get_backend(self.backend).available_devices()
            metafunc.parametrize("device", list(devices))

    # -- identity -------------------------------------------------------------------------
    def test_resolves_by_name_and_alias(self, impl: Any) -> None:
        backend = Backend(self.backend)
        assert Backend(backend.upper()) == backend
        for alias in backend.info.aliases:
            assert Backend(alias) == backend
        assert impl is get_backend(backend), "the implementation must be created once and cached"
        assert impl.name == backend

    def test_implements_protocol(self, impl: Any) -> None:
        assert isinstance(impl, BackendProtocol)
        for flag in ("trainable", "supports_partial_fit", "zero_copy_from_numpy"):
            assert isinstance(getattr(impl, flag), bool), flag
        devices = impl.available_devices()
        assert devices
        assert devices[0] == "cpu"

    # -- conversion -------------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_numpy_round_trip(self, impl: Any, device: str, shape: tuple[int, ...], dtype: str) -> None:
        array = _sample(shape, dtype)
        native = impl.from_numpy(array, device=device)
        assert impl.is_native(native)
        assert impl.device_of(native) == device
        back = impl.to_numpy(native)
        assert isinstance(back, np.ndarray)
        assert back.shape == shape
        assert back.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(back, array)

    @pytest.mark.parametrize(("source", "target"), [("float64", "float32"), ("int64", "float32"), ("float32", "int64")])
    def test_from_numpy_casts_dtype(self, impl: Any, device: str, source: str, target: str) -> None:
        array = _sample((4, 3), source)
        back = impl.to_numpy(impl.from_numpy(array, dtype=target, device=device))
        assert back.dtype == np.dtype(target)
        np.testing.assert_array_equal(back, array.astype(target))

    def test_from_numpy_accepts_non_contiguous(self, impl: Any, device: str) -> None:
        array = np.arange(24, dtype="float32").reshape(4, 6)[:, ::2]
        np.testing.assert_array_equal(impl.to_numpy(impl.from_numpy(array, device=device)), array)

    def test_to_numpy_passes_numpy_through(self, impl: Any) -> None:
        array = _sample((3,), "float32")
        np.testing.assert_array_equal(impl.to_numpy(array), array)

    def test_is_native_rejects_foreign_values(self, impl: Any) -> None:
        for value in ([1.0, 2.0], 3.0, "x", None, {"a": 1}):
            assert not impl.is_native(value), value

    def test_unknown_device_is_refused(self, impl: Any) -> None:
        with pytest.raises(DeviceError, match="tpu"):
            impl.from_numpy(np.zeros(2, dtype="float32"), device="tpu:0")

    def test_unavailable_device_is_refused(self, impl: Any) -> None:
        with pytest.raises(DeviceError, match="cuda:97"):
            impl.from_numpy(np.zeros(2, dtype="float32"), device="cuda:97")

    # -- ops ------------------------------------------------------------------------------------
    @pytest.mark.parametrize("axis", [0, 1, -1])
    def test_concat(self, impl: Any, device: str, axis: int) -> None:
        parts = [_sample((2, 3, 4), "float32", seed=s) for s in range(3)]
        native = [impl.from_numpy(p, device=device) for p in parts]
        result = impl.concat(native, axis=axis)
        assert impl.is_native(result)
        np.testing.assert_array_equal(impl.to_numpy(result), np.concatenate(parts, axis=axis))

    @pytest.mark.parametrize("axis", [0, 1, 3, -1])
    def test_stack(self, impl: Any, device: str, axis: int) -> None:
        parts = [_sample((2, 3, 4), "float32", seed=s) for s in range(3)]
        native = [impl.from_numpy(p, device=device) for p in parts]
        result = impl.stack(native, axis=axis)
        assert impl.is_native(result)
        np.testing.assert_array_equal(impl.to_numpy(result), np.stack(parts, axis=axis))

    @pytest.mark.parametrize("mode", list(PAD_MODES))
    @pytest.mark.parametrize(
        ("shape", "pad_width"),
        [
            ((5,), 2),
            ((5,), [(1, 3)]),
            ((3, 4), [(0, 0), (2, 1)]),
            ((3, 4), (1, 2)),
            ((2, 3, 4), [(1, 0), (0, 2), (3, 1)]),
            ((2, 2, 3, 4), [(0, 0), (1, 1), (1, 1), (2, 2)]),
        ],
        ids=str,
    )
    def test_pad_matches_numpy(self, impl: Any, device: str, mode: str, shape: tuple[int, ...], pad_width: Any) -> None:
        array = _sample(shape, "float32")
        result = impl.pad(impl.from_numpy(array, device=device), pad_width, mode=mode, constant_value=1.5)
        assert impl.is_native(result)
        if mode == "constant":
            expected = np.pad(array, pad_width, mode="constant", constant_values=1.5)
        else:
            expected = np.pad(array, pad_width, mode=PAD_MODES[mode])
        np.testing.assert_array_equal(impl.to_numpy(result), expected)

    def test_pad_circular_wider_than_axis(self, impl: Any) -> None:
        array = np.arange(3, dtype="float32")
        result = impl.to_numpy(impl.pad(impl.from_numpy(array), [(4, 5)], mode="circular"))
        np.testing.assert_array_equal(result, np.pad(array, (4, 5), mode="wrap"))

    def test_pad_rejects_bad_arguments(self, impl: Any) -> None:
        value = impl.from_numpy(np.zeros((2, 3), dtype="float32"))
        with pytest.raises(ValueError, match="symmetric"):
            impl.pad(value, 1, mode="symmetric")
        with pytest.raises(ValueError, match="non-negative"):
            impl.pad(value, -1)
        with pytest.raises(ValueError, match="2-D"):
            impl.pad(value, [(1, 1), (1, 1), (1, 1)])

    @pytest.mark.parametrize("dtype", ["int64", "bool"])
    def test_mean_of_integers_is_floating(self, impl: Any, dtype: str) -> None:
        array = _sample((3, 4), dtype)
        result = impl.to_numpy(impl.mean(impl.from_numpy(array), axis=0))
        assert result.dtype.kind == "f"
        np.testing.assert_allclose(result, array.mean(axis=0), rtol=1e-6)

    @pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)], ids=str)
    @pytest.mark.parametrize("keepdims", [False, True])
    def test_mean(self, impl: Any, device: str, axis: Any, keepdims: bool) -> None:
        array = _sample((2, 3, 4), "float32")
        result = impl.mean(impl.from_numpy(array, device=device), axis=axis, keepdims=keepdims)
        expected = np.mean(array, axis=axis, keepdims=keepdims)
        back = impl.to_numpy(result)
        assert back.shape == np.shape(expected)
        np.testing.assert_allclose(back, expected, rtol=1e-5, atol=1e-6)

    def test_detach_keeps_values(self, impl: Any, device: str) -> None:
        array = _sample((3, 2), "float32")
        detached = impl.detach(impl.from_numpy(array, device=device))
        assert impl.is_native(detached)
        np.testing.assert_array_equal(impl.to_numpy(detached), array)

    def test_no_grad_scope_nests_and_survives_errors(self, impl: Any) -> None:
        value = impl.from_numpy(np.ones((2, 2), dtype="float32"))
        with impl.no_grad():
            with impl.no_grad():
                inner = impl.mean(value)
            with pytest.raises(RuntimeError, match="boom"), impl.no_grad():
                raise RuntimeError("boom")
        assert float(impl.to_numpy(inner)) == 1.0
        assert float(impl.to_numpy(impl.mean(value))) == 1.0

    # -- randomness -----------------------------------------------------------------------------
    def test_seed_makes_draws_reproducible(self, impl: Any, device: str) -> None:
        impl.seed(1234)
        first = impl.to_numpy(impl.random_normal((4, 5), device=device))
        impl.seed(1234)
        second = impl.to_numpy(impl.random_normal((4, 5), device=device))
        impl.seed(4321)
        third = impl.to_numpy(impl.random_normal((4, 5), device=device))
        assert first.shape == (4, 5)
        assert first.dtype == np.float32
        np.testing.assert_array_equal(first, second)
        assert not np.array_equal(first, third)
        assert 0.3 < first.std() < 3.0, "draws should be standard normal"

    # -- laziness ---------------------------------------------------------------------------------
    def test_framework_is_imported_only_on_first_use(self) -> None:
        script = (
            "import sys, modularml as mml\n"
            f"backend = mml.Backend({self.backend!r})\n"
            "module = backend.info.framework_module\n"
            "assert backend.is_installed\n"
            "assert module is None or module not in sys.modules, module + ' imported by name resolution'\n"
            "mml.get_backend(backend)\n"
            "assert module is None or module in sys.modules\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, result.stderr

    def test_resolving_does_not_create_the_implementation(self) -> None:
        from modularml.plugins import PluginManager, use_plugin_manager

        with use_plugin_manager(PluginManager()):
            backend = Backend(self.backend)
            assert backend.is_installed
            assert not backend.info.is_loaded
