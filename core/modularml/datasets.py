"""Small synthetic datasets for examples, docs and tests: battery-like discharge curves.

Every sample is one discharge of a cell: a ``voltage`` curve and a ``current`` curve of
``n_points`` values, a scalar ``soh`` target (state of health) that shapes the voltage curve, a
``cell_id`` group tag (samples of one cell are correlated, so split by it), a ``protocol``
category tag (which sets the current), and a numeric ``temperature`` tag. Everything is drawn
from ``numpy.random.default_rng(seed)``: the same seed gives the same data on every machine.

Example:
    >>> from modularml.datasets import make_featureset
    >>> fs = make_featureset("cells", n_samples=200, seed=0)
    >>> fs.split_random({"train": 0.8, "val": 0.2}, group_by="cell_id", seed=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet

__all__ = ["FEATURE_KEYS", "TAG_KEYS", "TARGET_KEYS", "make_curves", "make_featureset", "make_long_dataframe"]

FEATURE_KEYS = ("voltage", "current")
TARGET_KEYS = ("soh",)
TAG_KEYS = ("cell_id", "protocol", "temperature")
_PROTOCOL_CURRENT = {"A": 1.0, "B": 2.0, "C": 3.0, "D": 0.5, "E": 1.5}


def _check(n_samples: int, n_points: int, n_groups: int, protocols: Sequence[str]) -> None:
    if n_samples < 1 or n_points < 2 or n_groups < 1:
        raise InvalidArgumentError(
            f"Need n_samples >= 1, n_points >= 2 and n_groups >= 1; got {n_samples}, {n_points}, {n_groups}."
        )
    if not protocols:
        raise InvalidArgumentError("Give at least one protocol name.")


def make_curves(
    n_samples: int = 200,
    *,
    n_points: int = 100,
    n_groups: int = 8,
    protocols: Sequence[str] = ("A", "B", "C"),
    noise: float = 0.005,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Synthetic samples as a dict of columns, ready for ``FeatureSet.from_dict``.

    Args:
        n_samples (int): Number of samples. Defaults to 200.
        n_points (int): Points per curve. Defaults to 100.
        n_groups (int): Number of cells (``cell_id`` values, ``"cell_00"``...). Defaults to 8.
        protocols (Sequence[str]): Protocol categories (``protocol`` values). Defaults to A, B, C.
        noise (float): Standard deviation of the measurement noise on the curves. Defaults to 0.005.
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict[str, np.ndarray]: ``voltage`` and ``current`` ``(n_samples, n_points)`` float32,
        ``soh`` ``(n_samples,)`` float32, ``cell_id`` and ``protocol`` ``(n_samples,)`` str,
        ``temperature`` ``(n_samples,)`` float32.

    Raises:
        ValueError: If a size is not positive (``n_points`` needs at least 2).
    """
    _check(n_samples, n_points, n_groups, protocols)
    rng = np.random.default_rng(seed)
    cell = rng.integers(0, n_groups, n_samples)
    cell_health = rng.uniform(0.85, 1.0, n_groups)
    cell_temperature = rng.choice(np.array([15.0, 25.0, 35.0]), n_groups)
    age = rng.uniform(0.0, 1.0, n_samples)
    soh = np.clip(cell_health[cell] - 0.15 * age + rng.normal(0.0, 0.005, n_samples), 0.5, 1.0)
    protocol_index = rng.integers(0, len(protocols), n_samples)
    rate = np.array([_PROTOCOL_CURRENT.get(p, 1.0 + i / 2) for i, p in enumerate(protocols)])[protocol_index]
    t = np.linspace(0.0, 1.0, n_points)
    curvature = 1.0 + 4.0 * (soh - 0.5)  # a healthier cell holds its voltage longer
    voltage = 4.2 - 0.9 * t[None, :] ** curvature[:, None] - 0.05 * rate[:, None] * t[None, :]
    voltage += rng.normal(0.0, noise, voltage.shape)
    current = rate[:, None] * (1.0 + 0.05 * np.sin(2 * np.pi * t)[None, :]) + rng.normal(0.0, noise, voltage.shape)
    temperature = cell_temperature[cell] + rng.normal(0.0, 0.5, n_samples)
    return {
        "voltage": voltage.astype(np.float32),
        "current": current.astype(np.float32),
        "soh": soh.astype(np.float32),
        "cell_id": np.char.add("cell_", np.char.zfill(cell.astype(str), 2)),
        "protocol": np.asarray(protocols)[protocol_index].astype(str),
        "temperature": temperature.astype(np.float32),
    }


def make_featureset(label: str = "synthetic", n_samples: int = 200, **kwargs: Any) -> FeatureSet:
    """A FeatureSet of :func:`make_curves` data: features ``voltage``, ``current``; target ``soh``;
    tags ``cell_id``, ``protocol``, ``temperature``.

    Args:
        label (str): The FeatureSet's label. Defaults to ``"synthetic"``.
        n_samples (int): Number of samples. Defaults to 200.
        kwargs: Passed to :func:`make_curves` (``n_points``, ``n_groups``, ``protocols``, ``noise``, ``seed``).

    Returns:
        FeatureSet: Registered in the active ExperimentContext, like any new FeatureSet.
    """
    from modularml.data.featureset import FeatureSet

    data = make_curves(n_samples, **kwargs)
    return FeatureSet.from_dict(label, data, list(FEATURE_KEYS), list(TARGET_KEYS), list(TAG_KEYS))


def make_long_dataframe(
    n_groups: int = 50,
    *,
    n_points: int = 100,
    n_cells: int = 8,
    protocols: Sequence[str] = ("A", "B", "C"),
    noise: float = 0.005,
    seed: int = 0,
    shuffle: bool = True,
) -> Any:
    """The same data in long format (one row per point), for ``FeatureSet.from_pandas(group_by=...)``.

    Columns: ``cell_id``, ``cycle`` (the group key is ``["cell_id", "cycle"]``), ``time``,
    ``voltage``, ``current``, ``soh``, ``protocol``, ``temperature``. Each group has ``n_points`` rows.

    Args:
        n_groups (int): Number of (cell, cycle) groups. Defaults to 50.
        n_points (int): Rows per group. Defaults to 100.
        n_cells (int): Number of cells. Defaults to 8.
        protocols (Sequence[str]): Protocol categories. Defaults to A, B, C.
        noise (float): Noise on the curves. Defaults to 0.005.
        seed (int): Random seed. Defaults to 0.
        shuffle (bool): Shuffle the rows (as data merged from several sources may be). Defaults to True.

    Returns:
        pandas.DataFrame: ``n_groups * n_points`` rows.

    Raises:
        ImportError: If pandas is not installed (``pip install "modularml[pandas]"``).
    """
    from modularml.data.formats import import_pandas

    pd = import_pandas()
    data = make_curves(n_groups, n_points=n_points, n_groups=n_cells, protocols=protocols, noise=noise, seed=seed)
    _, cell_code = np.unique(data["cell_id"], return_inverse=True)
    order = np.lexsort((np.arange(n_groups), cell_code))
    cycle_in_cell = np.empty(n_groups, dtype=np.int64)
    counts = np.bincount(cell_code)
    cycle_in_cell[order] = np.arange(n_groups) - np.repeat(np.cumsum(counts) - counts, counts)
    frame = pd.DataFrame(
        {
            "cell_id": np.repeat(data["cell_id"], n_points),
            "cycle": np.repeat(cycle_in_cell, n_points),
            "time": np.tile(np.linspace(0.0, 1.0, n_points), n_groups),
            "voltage": data["voltage"].reshape(-1),
            "current": data["current"].reshape(-1),
            "soh": np.repeat(data["soh"], n_points),
            "protocol": np.repeat(data["protocol"], n_points),
            "temperature": np.repeat(data["temperature"], n_points),
        }
    )
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=np.random.default_rng(seed + 1)).reset_index(drop=True)
    return frame
