"""The core's own components, registered through the same hooks as any plugin's."""

from __future__ import annotations

from modularml.plugins.hookspecs import hookimpl
from modularml.plugins.registry import Registrar


@hookimpl
def register_executors(register: Registrar) -> None:
    from modularml.executors import LocalExecutor

    register("local", LocalExecutor)


@hookimpl
def register_splitters(register: Registrar) -> None:
    from modularml.splitters import ConditionSplitter, RandomSplitter

    register("RandomSplitter", RandomSplitter)
    register("ConditionSplitter", ConditionSplitter)


@hookimpl
def register_scalers(register: Registrar) -> None:
    # import paths: the scalers module is imported only when a scaler is used
    register("Absolute", "modularml.scalers.absolute:Absolute")
    register("Negate", "modularml.scalers.negate:Negate")
    register("PerSampleMinMaxScaler", "modularml.scalers.per_sample_min_max:PerSampleMinMaxScaler")
    register("PerSampleZeroStart", "modularml.scalers.per_sample_zero:PerSampleZeroStart")
    register("SegmentedScaler", "modularml.scalers.segmented_scaler:SegmentedScaler")


@hookimpl
def register_samplers(register: Registrar) -> None:
    from modularml.samplers import NSampler, PairedSampler, SimpleSampler, TripletSampler

    register("SimpleSampler", SimpleSampler)
    register("NSampler", NSampler)
    register("PairedSampler", PairedSampler)
    register("TripletSampler", TripletSampler)
