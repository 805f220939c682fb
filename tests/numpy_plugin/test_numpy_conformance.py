from modularml.testing import BackendConformance, TrainableBackendConformance


class TestNumpyConformance(BackendConformance):
    backend = "numpy"


class TestNumpyTrainableConformance(TrainableBackendConformance):
    backend = "numpy"
