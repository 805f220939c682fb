import numpy as np
import pytest

import modularml_example
from modularml.plugins import PluginManager


def test_entry_point_contributes_the_scaler() -> None:
    manager = PluginManager()
    entry = manager.registry("scalers").entry("Log1pScaler")
    from modularml_example.scalers import Log1pScaler

    assert entry.obj is Log1pScaler
    assert entry.distribution == "modularml-example"
    assert entry.plugin == "modularml_example"
    record = next(r for r in manager.plugins() if r.name == "modularml_example")
    assert record.status == "loaded"
    assert record.version == modularml_example.__version__ == "2.0.0"
    assert record.contributions == {"scalers": ["Log1pScaler"]}


def test_log1p_scaler_round_trips_and_learns_offset() -> None:
    from modularml_example.scalers import Log1pScaler

    data = np.array([[0.0, -2.0], [1.0, 3.0], [9.0, 0.5]])
    scaler = Log1pScaler().fit(data)
    np.testing.assert_array_equal(scaler.offset_, [0.0, 2.0])
    transformed = scaler.transform(data)
    np.testing.assert_allclose(transformed, np.log1p(data + [0.0, 2.0]))
    np.testing.assert_allclose(scaler.inverse_transform(transformed), data)


def test_log1p_scaler_errors() -> None:
    from modularml_example.scalers import Log1pScaler

    with pytest.raises(ValueError, match="not fitted"):
        Log1pScaler().transform(np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        Log1pScaler().fit(np.ones(3))
    scaler = Log1pScaler(offset=1.0).fit(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="column 1"):
        scaler.transform(np.array([[0.0, -5.0]]))
    with pytest.raises(ValueError, match="fitted on 2 columns"):
        scaler.transform(np.zeros((1, 3)))
