from modularml.testing import TrainableBackendConformance


class TestTorchTrainableConformance(TrainableBackendConformance):
    backend = "torch"
