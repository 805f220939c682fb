from modularml.testing import BackendConformance


class TestScikitConformance(BackendConformance):
    backend = "sklearn"
