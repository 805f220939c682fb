"""The core's own components, registered through the same hooks as any plugin's.

Each is registered by its import path, so the plugin layer imports nothing above it: a component's
module is imported when it is first looked up.
"""

from __future__ import annotations

from modularml.plugins.hookspecs import hookimpl
from modularml.plugins.registry import Registrar


@hookimpl
def register_executors(register: Registrar) -> None:
    register("local", "modularml.executors:LocalExecutor")


@hookimpl
def register_splitters(register: Registrar) -> None:
    register("RandomSplitter", "modularml.splitters.random_splitter:RandomSplitter")
    register("ConditionSplitter", "modularml.splitters.condition_splitter:ConditionSplitter")


@hookimpl
def register_scalers(register: Registrar) -> None:
    register("Absolute", "modularml.scalers.absolute:Absolute")
    register("Negate", "modularml.scalers.negate:Negate")
    register("PerSampleMinMaxScaler", "modularml.scalers.per_sample_min_max:PerSampleMinMaxScaler")
    register("PerSampleZeroStart", "modularml.scalers.per_sample_zero:PerSampleZeroStart")
    register("SegmentedScaler", "modularml.scalers.segmented_scaler:SegmentedScaler")


@hookimpl
def register_samplers(register: Registrar) -> None:
    register("SimpleSampler", "modularml.samplers.simple:SimpleSampler")
    register("NSampler", "modularml.samplers.n_sampler:NSampler")
    register("PairedSampler", "modularml.samplers.paired:PairedSampler")
    register("TripletSampler", "modularml.samplers.triplet:TripletSampler")


@hookimpl
def register_callbacks(register: Registrar) -> None:
    register("CSVLogger", "modularml.callbacks.loggers:CSVLogger")
