"""Test kits for plugin authors (needs pytest: ``pip install "modularml[testing]"``).

Check a backend against the protocol by subclassing :class:`BackendConformance` in a test
module of your own::

    from modularml.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "mybackend"
"""

from modularml.testing.conformance import BackendConformance

__all__ = ["BackendConformance"]
