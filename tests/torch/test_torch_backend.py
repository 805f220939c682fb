"""Behaviour of the torch backend beyond the conformance kit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import modularml as mml
from modularml.backends import get_backend, normalize_pad_width, pad_index_map
from modularml.errors import DeviceError


@pytest.fixture
def impl():
    return get_backend("torch")


def test_from_numpy_shares_memory_with_contiguous_array(impl) -> None:
    array = np.zeros((2, 3), dtype="float32")
    tensor = impl.from_numpy(array)
    array[1, 2] = 7.0
    assert tensor[1, 2].item() == 7.0
    tensor[0, 0] = 3.0
    assert array[0, 0] == 3.0


def test_from_numpy_copies_non_contiguous_array(impl) -> None:
    array = np.arange(12, dtype="float32").reshape(3, 4)[:, ::2]
    tensor = impl.from_numpy(array)
    assert tensor.is_contiguous()
    np.testing.assert_array_equal(tensor.numpy(), array)


def test_from_numpy_non_writeable_array_converts_without_warning(impl) -> None:
    array = np.arange(6, dtype="float32")
    array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = impl.from_numpy(array)
    tensor[0] = 5.0  # a copy: the read-only array is untouched
    assert array[0] == 0.0


def test_from_numpy_non_native_byte_order(impl) -> None:
    array = np.arange(4, dtype=">f4")
    np.testing.assert_array_equal(impl.to_numpy(impl.from_numpy(array)), array)


def test_from_numpy_accepts_torch_dtype(impl) -> None:
    tensor = impl.from_numpy(np.arange(3, dtype="float32"), dtype=torch.bfloat16)
    assert tensor.dtype == torch.bfloat16


def test_unavailable_device_error_names_given_and_available_devices(impl) -> None:
    with pytest.raises(DeviceError, match=r"'cuda:97' \(given as 'gpu:97'\).*'cpu'"):
        impl.from_numpy(np.zeros(2, dtype="float32"), device="gpu:97")


def test_bfloat16_to_numpy_gives_float32(impl) -> None:
    tensor = torch.tensor([1.5, -2.0, 3.25], dtype=torch.bfloat16)
    back = impl.to_numpy(tensor)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, [1.5, -2.0, 3.25])


def test_to_numpy_detaches(impl) -> None:
    tensor = torch.ones(3, requires_grad=True) * 2
    back = impl.to_numpy(tensor)
    np.testing.assert_array_equal(back, [2.0, 2.0, 2.0])


def test_no_grad_stops_recording(impl) -> None:
    x = torch.ones(3, requires_grad=True)
    with impl.no_grad():
        inside = x * 2
    outside = x * 2
    assert inside.requires_grad is False
    assert outside.requires_grad is True


def test_detach_drops_requires_grad(impl) -> None:
    x = torch.ones(3, requires_grad=True) * 2
    detached = impl.detach(x)
    assert x.requires_grad
    assert not detached.requires_grad
    assert detached.data_ptr() == x.data_ptr()


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_is_differentiable(impl, mode: str) -> None:
    shape, pad_width = (3, 4), [(2, 1), (3, 5)]
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    impl.pad(x, pad_width, mode=mode).sum().backward()
    # d(sum)/dx counts how often each element appears in the padded output.
    expected = np.zeros(shape)
    widths = normalize_pad_width(pad_width, len(shape))
    rows = pad_index_map(shape[0], *widths[0], mode)
    cols = pad_index_map(shape[1], *widths[1], mode)
    np.add.at(expected, np.ix_(rows, cols), 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_constant_pad_is_differentiable(impl) -> None:
    x = torch.randn(2, 3, requires_grad=True)
    impl.pad(x, 2, constant_value=4.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_mean_of_integers_is_default_float(impl, dtype: str) -> None:
    array = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    result = impl.mean(impl.from_numpy(array), axis=(0, -1), keepdims=True)
    assert result.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(impl.to_numpy(result), np.mean(array, axis=(0, -1), keepdims=True), rtol=1e-6)


def test_mean_over_no_axis_reduces_nothing(impl) -> None:
    array = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(impl.to_numpy(impl.mean(impl.from_numpy(array), axis=())), array)


def test_backend_of_and_format() -> None:
    assert mml.backends.backend_for_format("torch") == "torch"
    assert mml.backend_of(torch.zeros(2)) == mml.Backend.TORCH
    assert mml.backend_of(np.zeros(2)) is None


def test_torch_is_imported_only_on_first_use() -> None:
    code = textwrap.dedent(
        """
        import sys
        import modularml as mml
        b = mml.Backend("torch")
        assert b.is_installed
        assert mml.backends.backend_for_format("torch") == "torch"
        assert "torch" not in sys.modules, "resolving the backend imported torch"
        impl = mml.get_backend("pytorch")
        assert "torch" in sys.modules
        assert impl.name == "torch"
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
