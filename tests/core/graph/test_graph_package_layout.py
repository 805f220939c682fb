"""The graph package's layout: ModelGraph composed from its concern modules (cycles: tests/core/test_layering.py)."""

from __future__ import annotations

import modularml as mml
from modularml.graph import ModelGraph
from modularml.graph.topology import GraphTopology
from modularml.graph.training import GraphTraining


def test_model_graph_is_composed_of_its_mixins() -> None:
    assert mml.ModelGraph is ModelGraph
    assert ModelGraph.__mro__[1:3] == (GraphTopology, GraphTraining)
    # No member is defined by both mixins, so the base order decides nothing.
    shared = {n for n in vars(GraphTopology) if not n.startswith("__")} & set(vars(GraphTraining))
    assert not shared
