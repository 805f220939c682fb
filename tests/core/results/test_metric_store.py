from __future__ import annotations

import numpy as np
import pytest

from modularml.results import MetricStore


def test_log_and_query() -> None:
    store = MetricStore()
    store.log("train_loss", 1.0, 0, 0)
    store.log("train_loss", np.float32(3.0), 0, 1)
    store.log("train_loss", 2.0, 0)
    store.log("train_loss", 0.5, 1)
    store.log("val_loss", 0.7, 1)
    assert store.names == ["train_loss", "val_loss"]
    assert store.epoch_values("train_loss") == {0: 2.0, 1: 0.5}
    assert store.batch_values("train_loss") == {(0, 0): 1.0, (0, 1): 3.0}
    assert store.get("train_loss", 0, 1) == 3.0
    assert store.get("train_loss", 5) is None
    assert store.last("train_loss") == 0.5
    assert store.epoch_indices == [0, 1]
    assert "val_loss" in store
    assert len(store) == 5
    store.log("val_loss", 0.6, 1)
    assert store.epoch_values("val_loss") == {1: pytest.approx(0.6)}
    assert {"name": "val_loss", "value": pytest.approx(0.6), "epoch_idx": 1, "batch_idx": None} in store.to_dict()


def test_errors() -> None:
    store = MetricStore()
    with pytest.raises(KeyError, match="No metric 'x'"):
        store.epoch_values("x")
    with pytest.raises(TypeError, match="real scalar"):
        store.log("x", "high", 0)
    with pytest.raises(ValueError, match="epoch_idx"):
        store.log("x", 1.0, -1)
    with pytest.raises(TypeError, match="metric name"):
        store.log("", 1.0, 0)
