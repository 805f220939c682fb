from modularml.backends import TrainableBackendProtocol, get_backend
from modularml.testing import BackendConformance, TrainableBackendConformance


class TestTensorflowConformance(BackendConformance):
    backend = "tensorflow"


class TestTensorflowTrainableConformance(TrainableBackendConformance):
    """Skips while the backend is not trainable; runs, and must pass, once it claims ``trainable``."""

    backend = "tensorflow"


def test_claims_trainable_only_with_the_trainable_protocol() -> None:
    impl = get_backend("tensorflow")
    assert impl.trainable is isinstance(impl, TrainableBackendProtocol)
