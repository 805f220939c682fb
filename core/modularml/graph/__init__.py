"""The model graph: :class:`ModelGraph`, the DAG of FeatureSets and graph nodes that trains."""

from modularml.graph.model_graph import ModelGraph

__all__ = ["ModelGraph"]
