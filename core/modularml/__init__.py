"""ModularML: modular, reproducible ML experiments across PyTorch, TensorFlow and scikit-learn.

Use it as ``import modularml as mml``. The core knows no ML framework; backends are
separately installed plugins (``pip install "modularml[torch]"``) found through entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modularml._version import __version__
from modularml.backends import Accelerator, Backend, BackendProtocol, backend_of, get_backend, seed_everything
from modularml.context import ExperimentContext, ExperimentNode, RegistrationPolicy
from modularml.errors import (
    BackendNotInstalledError,
    BackendNotSupportedError,
    ColumnNotFoundError,
    DeviceError,
    FileCollisionError,
    FileWriteError,
    ModularMLError,
    NotRegisteredError,
    PluginConflictError,
    PluginError,
    SerializationError,
)
from modularml.plugins import get_plugin_manager, hookimpl

if TYPE_CHECKING:
    from modularml.batches import Batch, BatchView, ExecutionContext, RoleData, SampleData
    from modularml.callbacks import Callback, CallbackResult
    from modularml.data import FeatureSet, FeatureSetColumnReference, FeatureSetReference, FeatureSetView
    from modularml.experiment import Experiment
    from modularml.graph import ModelGraph
    from modularml.losses import AppliedLoss, Loss
    from modularml.models import BaseModel
    from modularml.nodes import (
        ComputeNode,
        ConcatNode,
        ExperimentNodeReference,
        GraphNode,
        MergeNode,
        MergeStrategy,
        ModelNode,
    )
    from modularml.optimizers import Optimizer
    from modularml.phases import (
        BatchSchedulingPolicy,
        Checkpointing,
        EvalPhase,
        FitPhase,
        InputBinding,
        ResultRecording,
        TrainPhase,
    )
    from modularml.results import EvalResults, FitResults, MetricStore, PhaseResults, TrainResults
    from modularml.samplers import (
        STREAM_DEFAULT,
        BaseSampler,
        NSampler,
        PairedSampler,
        SampledView,
        SimpleSampler,
        TripletSampler,
    )
    from modularml.scalers import Scaler, supported_scalers
    from modularml.similarity import SimilarityCondition

# Data classes load on first use (``mml.FeatureSet``), so ``import modularml`` stays fast.
_LAZY = {
    "FeatureSet": "modularml.data",
    "FeatureSetView": "modularml.data",
    "FeatureSetReference": "modularml.data",
    "FeatureSetColumnReference": "modularml.data",
    "SimilarityCondition": "modularml.similarity",
    "BaseModel": "modularml.models",
    "Loss": "modularml.losses",
    "AppliedLoss": "modularml.losses",
    "ModelGraph": "modularml.graph",
    "GraphNode": "modularml.nodes",
    "ComputeNode": "modularml.nodes",
    "ModelNode": "modularml.nodes",
    "MergeNode": "modularml.nodes",
    "ConcatNode": "modularml.nodes",
    "MergeStrategy": "modularml.nodes",
    "ExperimentNodeReference": "modularml.nodes",
    "Optimizer": "modularml.optimizers",
    "Batch": "modularml.batches",
    "BatchView": "modularml.batches",
    "ExecutionContext": "modularml.batches",
    "RoleData": "modularml.batches",
    "SampleData": "modularml.batches",
    "STREAM_DEFAULT": "modularml.samplers",
    "BaseSampler": "modularml.samplers",
    "NSampler": "modularml.samplers",
    "PairedSampler": "modularml.samplers",
    "SampledView": "modularml.samplers",
    "SimpleSampler": "modularml.samplers",
    "TripletSampler": "modularml.samplers",
    "Scaler": "modularml.scalers",
    "supported_scalers": "modularml.scalers",
    "Callback": "modularml.callbacks",
    "CallbackResult": "modularml.callbacks",
    "EarlyStopping": "modularml.callbacks",
    "Evaluation": "modularml.callbacks",
    "EvaluationMetric": "modularml.callbacks",
    "EvalLossMetric": "modularml.callbacks",
    "MetricCallback": "modularml.callbacks",
    "AxisSeries": "modularml.results",
    "BatchSchedulingPolicy": "modularml.phases",
    "Checkpointing": "modularml.phases",
    "InputBinding": "modularml.phases",
    "ResultRecording": "modularml.phases",
    "TrainPhase": "modularml.phases",
    "EvalPhase": "modularml.phases",
    "FitPhase": "modularml.phases",
    "PhaseResults": "modularml.results",
    "TrainResults": "modularml.results",
    "EvalResults": "modularml.results",
    "FitResults": "modularml.results",
    "MetricStore": "modularml.results",
    "Experiment": "modularml.experiment",
    "ExperimentRun": "modularml.experiment",
    "PhaseGroup": "modularml.phases",
    "PhaseGroupResults": "modularml.results",
    "ExperimentCallback": "modularml.callbacks",
    "inspect_packaged_code": "modularml.plugins.packaging",
    "CrossValidation": "modularml.experiment",
    "CVBinding": "modularml.experiment",
    "CVResults": "modularml.results",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modularml' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "STREAM_DEFAULT",
    "Accelerator",
    "AppliedLoss",
    "ComputeNode",
    "ConcatNode",
    "ExperimentNodeReference",
    "GraphNode",
    "MergeNode",
    "MergeStrategy",
    "ModelGraph",
    "ModelNode",
    "Backend",
    "BackendNotInstalledError",
    "BackendNotSupportedError",
    "BackendProtocol",
    "BaseModel",
    "BaseSampler",
    "Batch",
    "BatchView",
    "ColumnNotFoundError",
    "DeviceError",
    "ExecutionContext",
    "ExperimentContext",
    "ExperimentNode",
    "FeatureSet",
    "FeatureSetColumnReference",
    "FeatureSetReference",
    "FeatureSetView",
    "FileCollisionError",
    "FileWriteError",
    "Loss",
    "ModularMLError",
    "NSampler",
    "NotRegisteredError",
    "Optimizer",
    "PairedSampler",
    "PluginConflictError",
    "PluginError",
    "RegistrationPolicy",
    "RoleData",
    "SampleData",
    "SampledView",
    "Scaler",
    "SerializationError",
    "SimilarityCondition",
    "SimpleSampler",
    "TripletSampler",
    "BatchSchedulingPolicy",
    "Checkpointing",
    "Callback",
    "CallbackResult",
    "EarlyStopping",
    "Evaluation",
    "EvaluationMetric",
    "EvalLossMetric",
    "MetricCallback",
    "AxisSeries",
    "EvalPhase",
    "EvalResults",
    "Experiment",
    "ExperimentCallback",
    "ExperimentRun",
    "CrossValidation",
    "CVBinding",
    "CVResults",
    "PhaseGroup",
    "PhaseGroupResults",
    "FitPhase",
    "FitResults",
    "InputBinding",
    "MetricStore",
    "PhaseResults",
    "ResultRecording",
    "TrainPhase",
    "TrainResults",
    "__version__",
    "backend_of",
    "get_backend",
    "get_plugin_manager",
    "hookimpl",
    "inspect_packaged_code",
    "seed_everything",
    "supported_scalers",
]
