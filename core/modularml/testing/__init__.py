"""Test kits for plugin authors (needs pytest: ``pip install "modularml[testing]"``).

Check a backend against the protocol by subclassing :class:`BackendConformance` in a test
module of your own::

    from modularml.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mybackend"

A trainable backend adds :class:`TrainableBackendConformance` in a second class the same way.
"""

from modularml.testing.conformance import BackendConformance, TrainableBackendConformance

__all__ = ["BackendConformance", "TrainableBackendConformance"]
