"""Graph nodes: what a :class:`~modularml.ModelGraph` is made of.

- :class:`GraphNode`: a node with upstream references (FeatureSets or other graph nodes).
- :class:`ComputeNode`: a graph node that computes an output batch.
- :class:`ModelNode`: one model of any backend, with its optimizer and freeze state.
- :class:`MergeNode` / :class:`ConcatNode`: combine several inputs into one batch.
"""

from modularml.nodes.graph_node import ComputeNode, GraphNode
from modularml.nodes.merge_node import ConcatNode, MergeNode, MergeStrategy
from modularml.nodes.model_node import ModelNode
from modularml.nodes.references import ExperimentNodeReference

__all__ = [
    "ComputeNode",
    "ConcatNode",
    "ExperimentNodeReference",
    "GraphNode",
    "MergeNode",
    "MergeStrategy",
    "ModelNode",
]
