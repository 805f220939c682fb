"""scikit-learn files: estimator state and parameters rebuild only scikit-learn estimators, never a named callable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer, StandardScaler

from modularml.errors import SerializationError
from modularml.models import BaseModel
from modularml.scalers import Scaler
from modularml.testing.hostile_files import rewrite_member
from modularml_sklearn.models import ScikitModelWrapper

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3))


@pytest.fixture
def sentinel(tmp_path: Path) -> dict[str, Path]:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    return {"created": tmp_path / "pwned", "victim": victim}


def _payloads(sentinel: dict[str, Path]) -> list[dict]:
    return [
        {
            "__mml_object__": "modularml.testing.conformance:subprocess.Popen",
            "params": {"args": ["touch", str(sentinel["created"])]},
        },
        {"__mml_object__": "modularml.io.atomic:os.system", "params": {"command": f"touch {sentinel['created']}"}},
        {
            "__mml_object__": "modularml.io.container:io.FileIO",
            "params": {"file": str(sentinel["victim"]), "mode": "w"},
        },
        {"__mml_object__": "sklearn.utils:_joblib.os.system", "params": {"command": f"touch {sentinel['created']}"}},
        {"__mml_object__": "sklearn.preprocessing._function_transformer:FunctionTransformer", "params": {}},
    ]


def _untouched(sentinel: dict[str, Path]) -> None:
    assert not sentinel["created"].exists(), "a crafted file ran a command"
    assert sentinel["victim"].read_text() == "keep me", "a crafted file opened a file for writing"


def test_nested_estimators_still_round_trip(tmp_path: Path) -> None:
    """PowerTransformer keeps a fitted StandardScaler in its learned state; a Pipeline nests estimators."""
    scaler = Scaler("PowerTransformer").fit(X)
    loaded = Scaler.load(scaler.save(tmp_path / "power"))
    assert type(loaded.scaler._scaler) is StandardScaler
    np.testing.assert_array_equal(loaded.transform(X), scaler.transform(X))
    model = ScikitModelWrapper(Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=2))])).fit(X, None)
    again = BaseModel.load(model.save(tmp_path / "pipe"))
    np.testing.assert_array_equal(again.forward(X), model.forward(X))


def test_scaler_learned_state_cannot_instantiate_a_named_type(tmp_path: Path, sentinel) -> None:
    good = Scaler("PowerTransformer").fit(X).save(tmp_path / "power")
    for index, payload in enumerate(_payloads(sentinel)):
        if "FunctionTransformer" in payload["__mml_object__"]:
            continue  # a scikit-learn estimator: allowed as a nested object (it holds no callable from a file)
        bad = rewrite_member(
            good, "state.json", lambda s, p=payload: {**s, "_scaler": p}, target=tmp_path / f"p{index}.sc.mml"
        )
        with pytest.raises(SerializationError, match=rf"p{index}\.sc\.mml.*_scaler"):
            Scaler.load(bad)
        _untouched(sentinel)


@pytest.mark.parametrize("where", ["estimator_kwargs", "estimator_state", "estimator_params"])
def test_model_files_cannot_instantiate_a_named_type(tmp_path: Path, sentinel, where: str) -> None:
    good = ScikitModelWrapper(PowerTransformer()).fit(X, None).save(tmp_path / "model")

    def inject(tree: dict, payload: dict) -> dict:
        if where == "estimator_kwargs":
            tree["init_args"]["estimator_kwargs"]["standardize"] = payload
        else:
            tree[where]["_scaler" if where == "estimator_state" else "standardize"] = payload
        return tree

    member = "config.json" if where == "estimator_kwargs" else "state.json"
    for index, payload in enumerate(_payloads(sentinel)[:4]):
        bad = rewrite_member(good, member, lambda t, p=payload: inject(t, p), target=tmp_path / f"m{index}.md.mml")
        with pytest.raises(SerializationError, match=rf"m{index}\.md\.mml"):
            BaseModel.load(bad)
        _untouched(sentinel)


def test_the_estimator_class_must_be_a_scikit_learn_estimator(tmp_path: Path, sentinel) -> None:
    good = ScikitModelWrapper(PCA(n_components=2)).fit(X, None).save(tmp_path / "pca")
    names = [
        "modularml.testing.conformance:subprocess.Popen",
        "sklearn.utils:_joblib.os.system",
        "modularml.data.featureset:FeatureSet",
    ]
    for name in names:

        def change(config: dict, n: str = name) -> dict:
            config["init_args"]["estimator"] = n
            return config

        rewrite_member(good, "config.json", change, target=tmp_path / "bad.md.mml")
        with pytest.raises(SerializationError, match=r"bad\.md\.mml.*estimator"):
            BaseModel.load(tmp_path / "bad.md.mml")
    _untouched(sentinel)
