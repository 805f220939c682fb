"""Messages a new user meets: each says what was wrong and what to do (issue 17, point 5).

A backend registered by its plugin but without its framework (``modularml-tf`` without
tensorflow) is simulated by a plugin whose backend module imports a module that does not exist.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import modularml as mml
from modularml.backends import NumpyTensorOps
from modularml.cli import main
from modularml.errors import BackendNotInstalledError, BackendNotSupportedError, ModelForwardError, PluginError
from modularml.plugins import PluginManager, hookimpl, use_plugin_manager

#: A backend module of a plugin whose framework is missing, as modularml_tf.backend is without tensorflow.
FRAMEWORKLESS = """
import framework_that_is_not_installed_here  # noqa

class Backend:
    pass
"""


class _PlainBackend(NumpyTensorOps):
    """A numpy-tensor backend that does not train (as scikit-learn's)."""

    name = "plain"
    trainable = False


def _plugin(register_backends):
    return type("Plugin", (), {"register_backends": staticmethod(hookimpl(register_backends))})()


@pytest.fixture
def frameworkless_tf(user_module) -> PluginManager:
    """A manager with the numpy backend, a non-trainable 'plain' one, and 'tensorflow' missing its framework."""
    pytest.importorskip("modularml_numpy")
    import modularml_numpy.plugin

    module = user_module("fake_tf_backend", FRAMEWORKLESS)

    def register_tf(register):
        register(
            "tensorflow",
            f"{module}:Backend",
            aliases=("tf", "keras"),
            framework_module="framework_that_is_not_installed_here",
        )

    def register_plain(register):
        register("plain", _PlainBackend)

    manager = PluginManager(discover=False)
    manager.register(modularml_numpy.plugin, name="modularml_numpy", distribution="modularml-numpy")
    manager.register(_plugin(register_tf), name="modularml_tf", distribution="modularml-tf")
    manager.register(_plugin(register_plain), name="plain_plugin", distribution="plain-backend")
    with use_plugin_manager(manager):
        yield manager


def test_a_backend_without_its_framework_says_which_extra_installs_it(frameworkless_tf) -> None:
    for call in (lambda: mml.get_backend("tf"), lambda: mml.Loss("mse", backend="tf")):
        with pytest.raises(BackendNotInstalledError) as info:
            call()
        message = str(info.value)
        assert "'tensorflow' backend is registered by 'modularml-tf', but its framework is not installed" in message
        assert 'pip install "modularml[tf]"' in message
        assert "framework_that_is_not_installed_here" in message
        assert "--force-reinstall" not in message
        assert isinstance(info.value, ImportError)
    assert not mml.Backend.TENSORFLOW.is_installed
    assert [str(b) for b in mml.Backend.installed()] == ["numpy", "plain"]
    assert [info.name for info in frameworkless_tf.unusable_backends()] == ["tensorflow"]


def test_a_plugin_whose_own_module_is_missing_asks_for_a_reinstall() -> None:
    def register(register):
        register("broken", "fake_backend_module_not_installed:Backend")

    manager = PluginManager(discover=False)
    # The plugin's own module is what cannot be imported: a broken installation, not a missing framework.
    manager.register(_plugin(register), name="fake_broken", distribution="fake-broken")
    with use_plugin_manager(manager), pytest.raises(PluginError) as info:
        mml.get_backend("broken")
    assert "pip install --force-reinstall fake-broken" in str(info.value)
    assert not isinstance(info.value, BackendNotInstalledError)


def test_plugins_strict_fails_for_a_backend_without_its_framework(frameworkless_tf, capsys) -> None:
    assert main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert "modularml_tf  (modularml-tf" in listing
    assert (
        "    NOT USABLE: backend 'tensorflow' needs 'framework_that_is_not_installed_here', which is not installed. "
        'Install it with: pip install "modularml[tf]"'
    ) in listing
    assert main(["plugins", "--strict"]) == 1
    err = capsys.readouterr().err
    assert "error: backend 'tensorflow' (modularml-tf) cannot run" in err
    assert 'pip install "modularml[tf]"' in err


def test_plugins_strict_passes_when_every_framework_imports(capsys) -> None:
    manager = PluginManager(discover=False)
    with use_plugin_manager(manager):
        assert main(["plugins", "--strict"]) == 0
    assert "NOT USABLE" not in capsys.readouterr().out


def test_a_misspelled_backend_lists_only_backends_that_work_and_suggests_the_name(frameworkless_tf) -> None:
    with pytest.raises(BackendNotSupportedError) as info:
        mml.Backend("pytorh")
    message = str(info.value)
    assert "Unknown backend 'pytorh'. Did you mean 'pytorch'?" in message
    assert "Installed backends: ['numpy', 'plain'];" in message
    assert (
        "Backend 'tensorflow' is registered but its framework 'framework_that_is_not_installed_here' is not" in message
    )


def test_a_loss_on_a_backend_that_does_not_train_names_those_that_do(frameworkless_tf) -> None:
    with pytest.raises(BackendNotSupportedError) as info:
        mml.Loss("mse", backend="plain")
    message = str(info.value)
    assert "The 'plain' backend does not train with losses" in message
    assert "use one of the trainable backends installed here: ['numpy']" in message
    assert "torch" not in message
    assert "tensorflow" not in message
    with pytest.raises(BackendNotSupportedError, match=r"trainable backends installed here: \['numpy'\]"):
        mml.Optimizer("sgd", backend="plain")


def test_seed_everything_seeds_python_numpy_and_every_installed_backend(frameworkless_tf) -> None:
    seeded = mml.seed_everything(7)
    assert [str(b) for b in seeded] == ["numpy", "plain"]  # tensorflow's framework is missing: not installed
    first = (random.random(), np.random.random(), mml.get_backend("numpy").random_normal((3,)))
    second_plain = mml.get_backend("plain").random_normal((2,))
    mml.seed_everything(7)
    assert random.random() == first[0]
    assert np.random.random() == first[1]
    np.testing.assert_array_equal(mml.get_backend("numpy").random_normal((3,)), first[2])
    np.testing.assert_array_equal(mml.get_backend("plain").random_normal((2,)), second_plain)
    assert [str(b) for b in mml.seed_everything(1, backends=["numpy"])] == ["numpy"]


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_refuses_what_is_not_a_seed(seed) -> None:
    with pytest.raises(TypeError, match="non-negative int"):
        mml.seed_everything(seed)


# ---------------------------------------------------------------------- graph and phases (numpy backend)
@pytest.fixture
def context(fresh_context):
    pytest.importorskip("modularml_numpy")
    return fresh_context


def test_a_phase_on_a_featureset_that_is_not_split_says_how_to_split_it(context, regression_fs) -> None:
    from modularml.callbacks import Evaluation
    from modularml.phases import TrainPhase
    from modularml_numpy.models import LinearModel

    fs = regression_fs()
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), fs, mml.Optimizer("sgd", backend="numpy"))
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    with pytest.raises(KeyError) as info:
        TrainPhase.from_split("train", split="train", sampler=mml.SimpleSampler(batch_size=8), losses=[loss])
    message = str(info.value)
    assert "Head node 'head' reads FeatureSet 'data', which has no split 'train': it is not split yet." in message
    assert "fs.split_random({'train': 0.8, 'val': 0.2}, seed=0)" in message
    with pytest.raises(KeyError, match="no split 'val': it is not split yet"):
        Evaluation.from_split("val", split="val", losses=[loss])
    fs.split_random({"train": 0.8, "test": 0.2}, seed=0)
    with pytest.raises(KeyError, match=r"no split 'val'; available splits: \['test', 'train'\]\. Use one of them"):
        Evaluation.from_split("val", split="val", losses=[loss])
    with pytest.raises(KeyError, match=r"No split: FeatureSet 'data', which has no split 'vla'; available splits"):
        fs.get_split("vla")


def test_a_model_that_fails_on_its_input_names_the_node_and_the_shapes(context, regression_fs) -> None:
    from modularml.models import BaseModel
    from modularml.phases import TrainPhase
    from modularml_numpy.autograd import Tensor

    class FiveInputs(BaseModel):
        """Expects 5 features per sample; the FeatureSet gives 3."""

        def __init__(self) -> None:
            super().__init__("numpy")
            self.w = Tensor(np.ones((5, 1), dtype=np.float32), requires_grad=True)

        def build(self, input_shape=None, output_shape=None, *, force=False):
            self._built = True

        @property
        def input_shape(self):
            return (5,)

        @property
        def output_shape(self):
            return (1,)

        def parameters(self):
            return [self.w]

        def forward(self, x, **kwargs):
            return x @ self.w

        def get_weights(self):
            return {"w": self.w.data}

        def set_weights(self, weights):
            self.w.data[...] = weights["w"]

    fs = regression_fs()
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    head = mml.ModelNode("wide", FiveInputs(), fs, mml.Optimizer("sgd", backend="numpy"))
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    phase = TrainPhase.from_split("train", split="train", sampler=mml.SimpleSampler(batch_size=8), losses=[loss])
    with pytest.raises(ModelForwardError) as info:
        phase.execute(show_training_progress=False, show_sampler_progress=False)
    message = str(info.value)
    assert (
        "ModelNode 'wide' (FiveInputs, backend 'numpy') failed on a batch of shape (8, 3) (per sample (3,))" in message
    )
    assert "It was built for per-sample input (5,)." in message
    assert isinstance(info.value, RuntimeError)
    assert info.value.__cause__ is not None
