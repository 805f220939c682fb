"""Behaviour of the TensorFlow backend beyond the conformance kit."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

import modularml as mml
from modularml.backends import get_backend, normalize_pad_width, pad_index_map
from modularml.errors import DeviceError
from modularml_tf import backend as tf_backend_module


@pytest.fixture
def impl():
    return get_backend("tensorflow")


# -- names and discovery ---------------------------------------------------------------------
def test_names_and_aliases() -> None:
    assert mml.Backend("tf") == mml.Backend.TENSORFLOW == "tensorflow"
    assert mml.Backend("keras") == mml.Backend.TENSORFLOW
    assert mml.Backend.TENSORFLOW.info.distribution == "modularml-tf"


def test_backend_of_and_format() -> None:
    assert mml.backends.backend_for_format("tf") == "tensorflow"
    assert mml.backends.backend_for_format("tensorflow") == "tensorflow"
    assert mml.backend_of(tf.zeros(2)) == mml.Backend.TENSORFLOW
    assert mml.backend_of(tf.Variable([1.0])) == mml.Backend.TENSORFLOW
    assert mml.backend_of(np.zeros(2)) is None


def test_resolving_by_name_imports_no_tensorflow() -> None:
    # That the first use then imports TensorFlow is the conformance kit's
    # test_framework_is_imported_only_on_first_use; this one stays cheap (no TensorFlow import).
    code = textwrap.dedent(
        """
        import sys
        import modularml as mml
        import modularml_tf, modularml_tf.plugin
        b = mml.Backend("tf")
        assert b.is_installed
        assert b.info.framework_module == "tensorflow"
        assert mml.backends.backend_for_format("tf") == "tensorflow"
        assert mml.backend_of(1.0) is None
        assert "tensorflow" not in sys.modules, "resolving the backend imported tensorflow"
        assert not b.info.is_loaded
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# -- conversion and devices ------------------------------------------------------------------
def test_from_numpy_copies(impl) -> None:
    assert impl.zero_copy_from_numpy is False
    array = np.zeros((2, 3), dtype="float32")
    tensor = impl.from_numpy(array)
    array[1, 2] = 7.0
    assert float(tensor[1, 2]) == 0.0


def test_from_numpy_non_native_byte_order_and_read_only(impl) -> None:
    array = np.arange(4, dtype=">f4")
    array.flags.writeable = False
    np.testing.assert_array_equal(impl.to_numpy(impl.from_numpy(array)), array)


@pytest.mark.parametrize("dtype", ["bfloat16", tf.bfloat16, np.float16])
def test_from_numpy_accepts_tf_and_numpy_dtypes(impl, dtype) -> None:
    tensor = impl.from_numpy(np.array([1.5, -2.0]), dtype=dtype)
    assert tensor.dtype == tf.as_dtype(dtype if dtype != np.float16 else "float16")


def test_bfloat16_to_numpy_gives_float32(impl) -> None:
    tensor = tf.constant([1.5, -2.0, 3.25], dtype=tf.bfloat16)
    back = impl.to_numpy(tensor)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, [1.5, -2.0, 3.25])


def test_to_numpy_scalar_and_variable(impl) -> None:
    back = impl.to_numpy(tf.constant(2.5))
    assert isinstance(back, np.ndarray)
    assert back.shape == ()
    variable = tf.Variable([[1, 2]], dtype=tf.int64)
    assert impl.is_native(variable)
    np.testing.assert_array_equal(impl.to_numpy(variable), [[1, 2]])


def test_unavailable_device_error_names_given_and_available_devices(impl) -> None:
    with pytest.raises(DeviceError, match=r"'cuda:97' \(given as 'gpu:97'\).*'cpu'"):
        impl.from_numpy(np.zeros(2, dtype="float32"), device="gpu:97")
    with pytest.raises(DeviceError, match="cuda:97"):
        impl.random_normal((2,), device="cuda:97")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/job:localhost/replica:0/task:0/device:CPU:0", "cpu"),
        ("/job:localhost/replica:0/task:0/device:GPU:0", "cuda:0"),
        ("/job:localhost/replica:0/task:0/device:GPU:1", "cuda:1"),
    ],
)
def test_device_of_parses_tensorflow_names(impl, raw: str, expected: str) -> None:
    assert impl.device_of(SimpleNamespace(device=raw)) == expected


@pytest.mark.parametrize("raw", ["", "/job:localhost/replica:0/task:0/device:TPU:0"])
def test_device_of_refuses_unknown_placements(impl, raw: str) -> None:
    with pytest.raises(DeviceError):
        impl.device_of(SimpleNamespace(device=raw))


# -- gradients -------------------------------------------------------------------------------
def test_no_grad_stops_every_active_tape(impl) -> None:
    x = tf.Variable([1.0, 2.0, 3.0])
    with tf.GradientTape(persistent=True) as outer, tf.GradientTape() as inner:
        with impl.no_grad(), impl.no_grad():
            inside = tf.reduce_sum(x * 2)
        outside = tf.reduce_sum(x * 2)  # recording resumes after the scope
    assert inner.gradient(inside, x) is None
    assert outer.gradient(inside, x) is None
    np.testing.assert_array_equal(outer.gradient(outside, x).numpy(), [2.0, 2.0, 2.0])


def test_no_grad_restores_recording_after_an_error(impl) -> None:
    x = tf.Variable(3.0)
    with tf.GradientTape() as tape:
        with pytest.raises(RuntimeError, match="boom"), impl.no_grad():
            raise RuntimeError("boom")
        y = x * x
    assert float(tape.gradient(y, x)) == 6.0


def test_no_grad_without_stop_recording_changes_nothing(impl, monkeypatch, caplog) -> None:
    monkeypatch.setattr(tf_backend_module, "_stop_recording", None)
    x = tf.Variable(3.0)
    with caplog.at_level(logging.DEBUG, logger="modularml_tf"), tf.GradientTape() as tape, impl.no_grad():
        y = x * x
    assert float(tape.gradient(y, x)) == 6.0
    assert "stop_recording" in caplog.text


def test_detach_stops_gradients(impl) -> None:
    x = tf.Variable([1.0, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        detached = tf.reduce_sum(impl.detach(x * 2))
        attached = tf.reduce_sum(x * 2)
    assert tape.gradient(detached, x) is None
    assert tape.gradient(attached, x) is not None


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_is_differentiable(impl, mode: str) -> None:
    shape, pad_width = (3, 4), [(2, 1), (3, 5)]
    x = tf.random.normal(shape, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(impl.pad(x, pad_width, mode=mode))
    grad = tf.convert_to_tensor(tape.gradient(total, x))
    # d(sum)/dx counts how often each element appears in the padded output.
    expected = np.zeros(shape)
    widths = normalize_pad_width(pad_width, len(shape))
    rows = pad_index_map(shape[0], *widths[0], mode)
    cols = pad_index_map(shape[1], *widths[1], mode)
    np.add.at(expected, np.ix_(rows, cols), 1.0)
    np.testing.assert_array_equal(grad.numpy(), expected)


def test_constant_pad_is_differentiable(impl) -> None:
    x = tf.Variable(tf.ones((2, 3)))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(impl.pad(x, 2, constant_value=4.0))
    np.testing.assert_array_equal(tape.gradient(total, x).numpy(), np.ones((2, 3)))


# -- ops -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dtype", "constant"), [("int32", 1.5), ("bool", 1.0), ("float64", -2.5)])
def test_constant_pad_casts_the_constant_like_numpy(impl, dtype: str, constant: float) -> None:
    array = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    result = impl.to_numpy(impl.pad(impl.from_numpy(array), [(1, 0), (0, 2)], constant_value=constant))
    expected = np.pad(array, [(1, 0), (0, 2)], constant_values=constant)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def test_pad_scalar_and_empty_axis(impl) -> None:
    scalar = impl.from_numpy(np.array(3.0, dtype="float32"))
    assert float(impl.to_numpy(impl.pad(scalar, 2))) == 3.0
    empty = impl.from_numpy(np.zeros((0, 2), dtype="float32"))
    assert impl.to_numpy(impl.pad(empty, [(1, 1), (0, 0)])).shape == (2, 2)
    with pytest.raises(ValueError, match="empty axis"):
        impl.pad(empty, 1, mode="reflect")


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_mean_of_integers_is_keras_float(impl, dtype: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    result = impl.mean(impl.from_numpy(array), axis=(0, -1), keepdims=True)
    assert result.dtype == tf.as_dtype(keras.backend.floatx())
    np.testing.assert_allclose(impl.to_numpy(result), np.mean(array, axis=(0, -1), keepdims=True), rtol=1e-6)


def test_mean_keeps_float64_and_reduces_nothing_over_no_axis(impl) -> None:
    array = np.arange(6, dtype="float64").reshape(2, 3)
    assert impl.mean(impl.from_numpy(array)).dtype == tf.float64
    np.testing.assert_array_equal(impl.to_numpy(impl.mean(impl.from_numpy(array), axis=())), array)


def test_seed_also_seeds_keras_and_numpy(impl) -> None:
    impl.seed(7)
    first = (keras.random.normal((3,)).numpy(), np.random.rand())
    impl.seed(7)
    second = (keras.random.normal((3,)).numpy(), np.random.rand())
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]
