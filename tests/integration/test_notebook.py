"""ModularML in a Jupyter notebook, executed by nbclient: rich views, diagrams shown once, one bar per phase.

The notebook runs in a real IPython kernel (ipykernel) with ipywidgets installed, as JupyterLab
would run it.
"""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

SETUP = """
import warnings
import modularml as mml
from modularml.datasets import make_featureset
from modularml.phases import TrainPhase
from modularml_torch import SequentialMLP
mml.seed_everything(0)
print(mml.ExperimentContext.get_active().registration_policy)
"""
MAKE_FS = """
fs = make_featureset("cells", n_samples=60, seed=0)
fs.split_random({"train": 0.8, "val": 0.2}, seed=1)
"""
GRAPH = """
head = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs)
graph = mml.ModelGraph([head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"))
mse = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
sampler = mml.SimpleSampler(batch_size=8, seed=0)
train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[mse], n_epochs=3)
"""
CELLS = [
    SETUP,  # 0
    MAKE_FS,  # 1
    MAKE_FS,  # 2: the same cell run again
    "fs",  # 3
    "fs.visualize()",  # 4
    GRAPH,  # 5
    "results = train.execute(show_sampler_progress=False)",  # 6
    "results",  # 7
    "graph",  # 8
    "graph.visualize()",  # 9
    "train",  # 10
    'mml.ExperimentContext().activate()\nfs = make_featureset("cells", n_samples=20, seed=0)\nprint(len(fs))',  # 11
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}},
    )
    client.execute()
    return notebook.cells


def _outputs(cell, output_type):
    return [o for o in cell.outputs if o.output_type == output_type]


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in _outputs(cell, "stream"))


def test_a_notebook_registers_with_overwrite_and_a_warning(executed) -> None:
    assert _text(executed[0]).strip() == "overwrite_warn"
    assert not _outputs(executed[1], "error")
    rerun = executed[2]
    assert not _outputs(rerun, "error"), "re-running a cell must not raise NodeCollisionError"
    assert "RegistrationWarning" in _text(rerun) or "replac" in _text(rerun).lower()


def test_a_featureset_shows_its_columns_splits_as_html(executed) -> None:
    (result,) = _outputs(executed[3], "execute_result")
    page = result.data["text/html"]
    assert "FeatureSet &#x27;cells&#x27;: 60 samples" in page
    for piece in ("voltage", "current", "soh", "(100,)", "<td>train</td>", "<td>48</td>"):
        assert piece in page


@pytest.mark.parametrize("index", [4, 9])
def test_visualize_displays_the_diagram_once_and_returns_nothing(executed, index: int) -> None:
    cell = executed[index]
    assert not _outputs(cell, "execute_result"), "visualize() in a notebook displays; it must not also return the text"
    (shown,) = _outputs(cell, "display_data")
    assert '<pre class="mermaid">' in shown.data["text/html"]
    assert "flowchart" in shown.data["text/html"]


def test_training_shows_one_bar_updated_in_place_and_lines_that_stay(executed) -> None:
    cell = executed[6]
    assert not _outputs(cell, "error")
    widgets = [o for o in _outputs(cell, "display_data") if "application/vnd.jupyter.widget-view+json" in o.data]
    assert len(widgets) == 1, "one bar for the whole phase"
    text = _text(cell)
    for epoch in (1, 2, 3):
        assert f"train  epoch {epoch}/3  train_loss " in text
    assert "train: 3/3 epochs in " in text
    assert "\x1b" not in text


def test_results_graph_and_phase_have_html_views(executed) -> None:
    results = _outputs(executed[7], "execute_result")[0].data["text/html"]
    assert "<td>train_loss</td><td>3</td>" in results
    graph = _outputs(executed[8], "execute_result")[0].data["text/html"]
    assert '<pre class="mermaid">' in graph
    assert "<td>mlp</td><td>ModelNode</td><td>SequentialMLP</td><td>torch</td>" in graph
    phase = _outputs(executed[10], "execute_result")[0].data["text/html"]
    assert "TrainPhase &#x27;train&#x27;" in phase
    assert "train: 3/3 epochs in" in phase


def test_activate_starts_a_clean_context(executed) -> None:
    cell = executed[11]
    assert not _outputs(cell, "error")
    assert _text(cell).strip() == "20"
