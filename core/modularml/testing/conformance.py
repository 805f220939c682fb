"""Parametrised tests that any backend runs against itself.

Subclass :class:`BackendConformance`, set ``backend`` to the backend's name, and pytest
collects every test below for it. Tests run on every device the backend reports as available
(so on a CUDA machine they run on ``"cuda:0"`` too); set ``devices`` to restrict them.

A trainable backend also subclasses :class:`TrainableBackendConformance` (in a second test
class): it checks :class:`~modularml.backends.TrainableBackendProtocol` by training a linear
regression through ``gradient_scope``/``apply_gradients``, round-tripping optimizer state, and
resolving losses by name. Its tests skip for backends that are not ``trainable``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import numpy as np
import pytest

from modularml.backends import Backend, BackendProtocol, TrainableBackendProtocol, get_backend
from modularml.backends.padding import PAD_MODES
from modularml.errors import DeviceError, InvalidArgumentError, NotRegisteredError

__all__ = ["BackendConformance", "TrainableBackendConformance"]

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

    # -- devices ----------------------------------------------------------------------------
    def test_to_device_moves_values_and_refuses_missing_devices(self, impl: Any, device: str) -> None:
        """``to_device`` gives the same values on the device, the same object when already there."""
        array = _sample((3, 4), "float32")
        native = impl.from_numpy(array)
        moved = impl.to_device(native, device)
        assert impl.device_of(moved) == device
        np.testing.assert_array_equal(impl.to_numpy(moved), array)
        assert impl.to_device(moved, device) is moved
        missing = next(f"cuda:{i}" for i in range(64) if f"cuda:{i}" not in impl.available_devices())
        with pytest.raises(DeviceError, match=missing):
            impl.to_device(native, missing)

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

    @pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)], ids=str)
    @pytest.mark.parametrize("keepdims", [False, True])
    def test_sum(self, impl: Any, device: str, axis: Any, keepdims: bool) -> None:
        array = _sample((2, 3, 4), "float32")
        result = impl.sum(impl.from_numpy(array, device=device), axis=axis, keepdims=keepdims)
        expected = np.sum(array, axis=axis, keepdims=keepdims)
        back = impl.to_numpy(result)
        assert back.shape == np.shape(expected)
        assert back.dtype == np.float32, "floating inputs keep their dtype"
        np.testing.assert_allclose(back, expected, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("shape", [(6, 4), (24,), (2, -1), (4, 3, 2), (1, 24, 1)], ids=str)
    def test_reshape(self, impl: Any, device: str, shape: tuple[int, ...]) -> None:
        array = _sample((2, 3, 4), "float32")
        result = impl.reshape(impl.from_numpy(array, device=device), shape)
        assert impl.is_native(result)
        np.testing.assert_array_equal(impl.to_numpy(result), array.reshape(shape))

    def test_reshape_refuses_a_wrong_element_count(self, impl: Any) -> None:
        value = impl.from_numpy(np.zeros((2, 3), dtype="float32"))
        with pytest.raises(Exception, match=r"(?i)shape|size|reshape"):
            impl.reshape(value, (4, 2))

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


def _assert_plain(value: Any, where: str = "state") -> None:
    """Fail unless ``value`` holds only JSON values and numpy arrays (what a ModularML file stores)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return
    if isinstance(value, np.ndarray):
        assert not value.dtype.hasobject, f"{where} is an object array"
        return
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where} has the non-string key {key!r}"
            _assert_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _assert_plain(item, f"{where}[{i}]")
        return
    raise AssertionError(f"{where} is a {type(value).__qualname__}; states hold JSON values and numpy arrays only")


def _assert_same_tree(first: Any, second: Any, where: str = "state") -> None:
    if isinstance(first, dict):
        assert isinstance(second, dict), where
        assert sorted(first) == sorted(second), where
        for key in first:
            _assert_same_tree(first[key], second[key], f"{where}[{key!r}]")
    elif isinstance(first, (list, tuple)):
        assert isinstance(second, (list, tuple)), where
        assert len(first) == len(second), where
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            _assert_same_tree(a, b, f"{where}[{i}]")
    elif isinstance(first, (np.ndarray, np.generic)) or isinstance(second, (np.ndarray, np.generic)):
        np.testing.assert_allclose(np.asarray(first), np.asarray(second), rtol=1e-6, err_msg=where)
    else:
        assert first == second, where


class TrainableBackendConformance:
    """The :class:`~modularml.backends.TrainableBackendProtocol`, checked against one backend.

    Every test skips unless the backend is ``trainable``. The defaults suit torch-like backends;
    override the class attributes where the framework's names differ (Keras' SGD takes
    ``learning_rate``).

    Attributes:
        backend: Name (or alias) of the backend under test.
        loss_name: A mean-squared-error loss the backend resolves by name.
        optimizer_name: An optimizer the backend resolves by name.
        optimizer_kwargs: Its arguments; with momentum, so that it has state to round-trip.
        train_steps: Steps the linear regression may take to reach a loss below ``1e-3``.
    """

    backend: ClassVar[str]
    loss_name: ClassVar[str] = "mse"
    optimizer_name: ClassVar[str] = "sgd"
    optimizer_kwargs: ClassVar[dict[str, Any]] = {"lr": 0.05, "momentum": 0.9}
    train_steps: ClassVar[int] = 300

    @pytest.fixture
    def impl(self) -> Any:
        impl = get_backend(self.backend)
        if not impl.trainable:
            pytest.skip(f"the {self.backend!r} backend is not trainable")
        return impl

    # -- randomness ---------------------------------------------------------------------------------
    def test_rng_state_round_trips_through_a_file(self, impl: Any, tmp_path: Any) -> None:
        """``get_rng_state`` is plain data; after ``set_rng_state`` the generators draw the same values again."""
        from modularml.io import read_container, write_container

        impl.seed(11)
        impl.random_normal((3,))
        state = impl.get_rng_state()
        path = write_container(tmp_path / "rng", kind="ckpt", cls="builtins:object", config={}, state={"rng": state})
        first = impl.to_numpy(impl.random_normal((4, 5)))
        impl.random_normal((7,))
        impl.set_rng_state(read_container(path).state["rng"])
        again = impl.to_numpy(impl.random_normal((4, 5)))
        np.testing.assert_array_equal(first, again)

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _regression(impl: Any) -> tuple[Any, Any, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(7)
        x = rng.standard_normal((64, 3)).astype("float32")
        w = np.array([[1.5], [-2.0], [0.5]], dtype="float32")
        y = (x @ w + 0.25).astype("float32")
        return impl.from_numpy(x), impl.from_numpy(y), w, np.array([0.25], dtype="float32")

    def _setup(self, impl: Any) -> tuple[list[Any], Any, Any, Any, Any]:
        params = [
            impl.parameter_from_numpy(np.zeros((3, 1), dtype="float32")),
            impl.parameter_from_numpy(np.zeros((1,), dtype="float32")),
        ]
        loss_fn = impl.build_loss(impl.resolve_loss(self.loss_name), {}, "none")
        optimizer = impl.build_optimizer(impl.resolve_optimizer(self.optimizer_name), self.optimizer_kwargs, params)
        x, y, _, _ = self._regression(impl)
        return params, loss_fn, optimizer, x, y

    @staticmethod
    def _step(impl: Any, params: list[Any], loss_fn: Any, optimizer: Any, x: Any, y: Any) -> float:
        with impl.gradient_scope() as scope:
            loss = impl.mean(loss_fn(x @ params[0] + params[1], y))
        impl.apply_gradients(loss, optimizer, params, scope)
        return float(impl.to_numpy(impl.detach(loss)))

    # -- protocol ---------------------------------------------------------------------------------
    def test_implements_trainable_protocol(self, impl: Any) -> None:
        assert isinstance(impl, TrainableBackendProtocol)
        assert impl.trainable is True

    def test_claims_no_foreign_objects(self, impl: Any) -> None:
        for value in (object(), np.zeros(3), "model", None, {"a": 1}):
            assert impl.claims_model(value) is False, value

    def test_native_arithmetic(self, impl: Any) -> None:
        a_np = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="float32")
        b_np = np.array([[0.5, -1.0], [2.0, 0.25]], dtype="float32")
        a, b = impl.from_numpy(a_np), impl.from_numpy(b_np)
        cases = {
            "a + b": (a + b, a_np + b_np),
            "a - b": (a - b, a_np - b_np),
            "a * b": (a * b, a_np * b_np),
            "a / b": (a / b, a_np / b_np),
            "a @ b": (a @ b, a_np @ b_np),
            "2 * a": (2.0 * a, 2.0 * a_np),
            "a * 2": (a * 2.0, a_np * 2.0),
            "a + 1": (a + 1, a_np + 1),
            "1 - a": (1 - a, 1 - a_np),
            "a / 4": (a / 4, a_np / 4),
            "2 / a": (2.0 / a, 2.0 / a_np),
            "-a": (-a, -a_np),
        }
        for label, (result, expected) in cases.items():
            assert impl.is_native(result), label
            back = impl.to_numpy(result)
            assert back.dtype == np.float32, f"{label} changed the dtype to {back.dtype}"
            np.testing.assert_allclose(back, expected, rtol=1e-6, err_msg=label)

    # -- losses -----------------------------------------------------------------------------------
    def test_loss_names_resolve_leniently(self, impl: Any) -> None:
        name = self.loss_name
        found = impl.resolve_loss(name)
        for variant in (name.upper(), name.capitalize(), f"{name}loss", f"{name.upper()}Loss", f"{name}_loss"):
            assert impl.resolve_loss(variant) is found, variant

    def test_unknown_loss_lists_the_options(self, impl: Any) -> None:
        with pytest.raises(NotRegisteredError, match=r"no_such_loss_xyz.*(?i:available)"):
            impl.resolve_loss("no_such_loss_xyz")

    def test_loss_is_not_reduced_by_default(self, impl: Any) -> None:
        rng = np.random.default_rng(3)
        outputs, targets = (rng.standard_normal((4, 3)).astype("float32") for _ in range(2))
        loss_fn = impl.build_loss(impl.resolve_loss(self.loss_name), {}, "none")
        values = impl.to_numpy(loss_fn(impl.from_numpy(outputs), impl.from_numpy(targets)))
        assert values.shape[0] == 4, "reduction='none' keeps the batch axis first"
        per_sample = values.reshape(4, -1).mean(axis=1)
        np.testing.assert_allclose(per_sample, ((outputs - targets) ** 2).mean(axis=1), rtol=1e-5)

    # -- optimizers and gradients -----------------------------------------------------------------
    def test_optimizer_names_resolve_case_insensitively(self, impl: Any) -> None:
        found = impl.resolve_optimizer(self.optimizer_name)
        assert impl.resolve_optimizer(self.optimizer_name.upper()) is found
        with pytest.raises(NotRegisteredError, match="no_such_optimizer_xyz"):
            impl.resolve_optimizer("no_such_optimizer_xyz")

    def test_linear_regression_trains(self, impl: Any) -> None:
        impl.seed(0)
        params, loss_fn, optimizer, x, y = self._setup(impl)
        first = self._step(impl, params, loss_fn, optimizer, x, y)
        for _ in range(self.train_steps):
            last = self._step(impl, params, loss_fn, optimizer, x, y)
            if last < 1e-4:
                break
        assert last < 1e-3, f"loss went from {first} to {last} in {self.train_steps} steps"
        _, _, w, b = self._regression(impl)
        np.testing.assert_allclose(impl.to_numpy(params[0]), w, atol=0.05)
        np.testing.assert_allclose(impl.to_numpy(params[1]), b, atol=0.05)

    def test_model_parameters_refuses_foreign_objects(self, impl: Any) -> None:
        with pytest.raises(TypeError):
            impl.model_parameters(object())

    def test_optimizer_state_round_trips(self, impl: Any) -> None:
        params, loss_fn, optimizer, x, y = self._setup(impl)
        for _ in range(3):
            self._step(impl, params, loss_fn, optimizer, x, y)
        state = impl.get_optimizer_state(optimizer)
        _assert_plain(state)
        twins = [impl.parameter_from_numpy(np.array(impl.to_numpy(p))) for p in params]
        twin_optimizer = impl.build_optimizer(impl.resolve_optimizer(self.optimizer_name), self.optimizer_kwargs, twins)
        impl.set_optimizer_state(twin_optimizer, state)
        _assert_same_tree(impl.get_optimizer_state(twin_optimizer), state)
        self._step(impl, params, loss_fn, optimizer, x, y)
        self._step(impl, twins, loss_fn, twin_optimizer, x, y)
        for original, twin in zip(params, twins, strict=True):
            np.testing.assert_allclose(impl.to_numpy(twin), impl.to_numpy(original), rtol=1e-5, atol=1e-6)

    def test_no_grad_records_nothing(self, impl: Any) -> None:
        params, loss_fn, optimizer, x, y = self._setup(impl)
        before = [np.array(impl.to_numpy(p)) for p in params]
        with impl.gradient_scope() as scope:
            with impl.no_grad():
                loss = impl.mean(loss_fn(x @ params[0] + params[1], y))
            with pytest.raises(InvalidArgumentError):
                impl.apply_gradients(loss, optimizer, params, scope)
        for original, param in zip(before, params, strict=True):
            np.testing.assert_array_equal(impl.to_numpy(param), original)

    def test_apply_gradients_needs_a_scalar_loss(self, impl: Any) -> None:
        params, loss_fn, optimizer, x, y = self._setup(impl)
        with impl.gradient_scope() as scope:
            per_sample = loss_fn(x @ params[0] + params[1], y)
        with pytest.raises(InvalidArgumentError, match=r"(?i)scalar|one-element|one element"):
            impl.apply_gradients(per_sample, optimizer, params, scope)
