from modularml.testing import BackendConformance


class TestTensorflowConformance(BackendConformance):
    backend = "tensorflow"
