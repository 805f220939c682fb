from modularml.testing import BackendConformance


class TestTorchConformance(BackendConformance):
    backend = "torch"
