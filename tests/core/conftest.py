from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import modularml as mml
from modularml.plugins import PluginManager, hookimpl, use_plugin_manager

FakeDistribution = Callable[..., Path]


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDistribution:
    """Write an installed-looking distribution (dist-info + modules) and put it on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created_modules: list[str] = []

    def make(name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> Path:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[modularml]\n{lines}\n")
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            created_modules.append(module)
        importlib.invalidate_caches()
        return site

    yield make
    for module in created_modules:
        sys.modules.pop(module, None)


@pytest.fixture
def manager() -> PluginManager:
    """A fresh plugin manager (entry points discovered on first use), active for the test."""
    fresh = PluginManager()
    with use_plugin_manager(fresh):
        yield fresh


@pytest.fixture
def register_test_scalers() -> Callable[..., None]:
    """Register scaler classes defined in a test through a plugin, as a real package would.

    Only classes from registered (or modularml's own) packages are rebuilt from saved files.
    """
    fresh = PluginManager()
    count = 0

    def register(*classes: type) -> None:
        nonlocal count
        count += 1

        def register_scalers(register):
            for cls in classes:
                register(cls.__name__, cls)

        plugin = type("TestScalers", (), {"register_scalers": staticmethod(hookimpl(register_scalers))})()
        fresh.register(plugin, name=f"test-scalers-{count}")

    with use_plugin_manager(fresh):
        yield register


@pytest.fixture
def fresh_context() -> Iterator[object]:
    """A context of its own (policy ``error``) for the FeatureSets, nodes and graph of one test; numpy backend seeded.

    Test folders that train (graph, nodes, phases, results, callbacks, experiment) use it for every
    test through an autouse fixture in their conftest.
    """
    from modularml.context import ExperimentContext

    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        mml.get_backend("numpy").seed(0)
        yield ctx


@pytest.fixture
def regression_fs() -> Callable[..., object]:
    """A learnable linear-regression FeatureSet: features a, b, c; target y = a - 2b + 0.5c + 0.3; tag g."""
    from modularml.data import FeatureSet

    def make(label: str = "data", n: int = 64, seed: int = 0) -> FeatureSet:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)
        data = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y, "g": np.arange(n) % 4}
        return FeatureSet.from_dict(label, data, ["a", "b", "c"], ["y"], ["g"])

    return make


@pytest.fixture
def mean_fit_model_cls() -> type:
    """A batch-fit numpy-backend BaseModel (it predicts the mean target seen by ``fit``)."""
    pytest.importorskip("modularml_numpy")
    from modularml.models import BaseModel
    from modularml_numpy.autograd import Tensor

    class MeanFitModel(BaseModel):
        def __init__(self) -> None:
            super().__init__("numpy")
            self.value: float | None = None
            self.fit_calls = 0
            self._in = None

        def build(self, input_shape=None, output_shape=None, *, force=False):
            self._in = input_shape
            self._built = True

        @property
        def input_shape(self):
            return self._in

        @property
        def output_shape(self):
            return (1,)

        def fit(self, x, y):
            self.fit_calls += 1
            self.value = float(np.mean(y))

        def forward(self, x, **kwargs):
            value = 0.0 if self.value is None else self.value
            return Tensor(np.full((x.shape[0], 1), value, dtype=np.float32))

        def get_weights(self):
            return {"value": np.array([self.value or 0.0])}

        def set_weights(self, weights):
            self.value = float(weights["value"][0])

    return MeanFitModel


@pytest.fixture
def linear_setup(regression_fs) -> Callable[..., SimpleNamespace]:
    """A split regression FeatureSet, one linear head node with SGD, its graph and an MSE loss."""
    from modularml_numpy.models import LinearModel

    def make(n: int = 64, lr: float = 0.05, scale_targets: str | None = None, extra_heads: int = 0) -> SimpleNamespace:
        fs = regression_fs(n=n)
        fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
        if scale_targets is not None:
            fs.fit_transform(scale_targets, domain="targets", fit_to_split="train")
        opt = mml.Optimizer("sgd", opt_kwargs={"lr": lr}, backend="numpy")
        head = mml.ModelNode("head", LinearModel(output_shape=(1,)), fs, opt)
        extra = [
            mml.ModelNode(f"head{i}", LinearModel(output_shape=(1,)), fs, opt.__class__.from_config(opt.get_config()))
            for i in range(1, extra_heads + 1)
        ]
        graph = mml.ModelGraph([head, *extra])
        mse = mml.Loss("mse", backend="numpy")
        loss = mml.AppliedLoss(mse, on=head, inputs=["outputs", "targets"])
        extra_losses = [mml.AppliedLoss(mse, on=node, inputs=["outputs", "targets"]) for node in extra]
        return SimpleNamespace(fs=fs, head=head, graph=graph, loss=loss, extra=extra, extra_losses=extra_losses)

    return make


@pytest.fixture
def numpy_backend():
    """The numpy backend plugin's implementation, seeded."""
    impl = mml.get_backend("numpy")
    impl.seed(0)
    return impl


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write an importable module of the user's own (not modularml, not a plugin); returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)
