"""Samplers: from a FeatureSet (or view) to batches of row indices, with roles, weights and streams.

- :class:`SimpleSampler`: plain batches (role ``"default"``), shuffled per epoch, grouped or stratified.
- :class:`PairedSampler`: roles ``anchor`` and ``pair``, chosen by similarity conditions.
- :class:`TripletSampler`: roles ``anchor``, ``positive`` and ``negative``.
- :class:`NSampler`: an anchor plus any number of roles from a condition mapping.

A sampler is bound to one or more sources (``source=`` or :meth:`BaseSampler.bind_sources`) and
materialises a :class:`SampledView`: output stream -> list of :class:`~modularml.batches.BatchView`.
All four are registered through the ``register_samplers`` plugin hook, like a third party's.
"""

from modularml.samplers.base import BaseSampler, SamplerNotReadyError, Samples, sampler_class
from modularml.samplers.n_sampler import ROLE_ANCHOR, NSampler
from modularml.samplers.paired import ROLE_PAIR, PairedSampler
from modularml.samplers.sampled_view import STREAM_DEFAULT, SampledView
from modularml.samplers.simple import SimpleSampler
from modularml.samplers.triplet import ROLE_NEGATIVE, ROLE_POSITIVE, TripletSampler

__all__ = [
    "ROLE_ANCHOR",
    "ROLE_NEGATIVE",
    "ROLE_PAIR",
    "ROLE_POSITIVE",
    "STREAM_DEFAULT",
    "BaseSampler",
    "NSampler",
    "PairedSampler",
    "SampledView",
    "SamplerNotReadyError",
    "Samples",
    "SimpleSampler",
    "TripletSampler",
    "sampler_class",
]
