from modularml.backends import TrainableBackendProtocol, get_backend
from modularml.testing import BackendConformance


class TestScikitConformance(BackendConformance):
    backend = "sklearn"


def test_is_not_trainable_and_has_no_trainable_protocol() -> None:
    impl = get_backend("sklearn")
    assert impl.trainable is False
    assert not isinstance(impl, TrainableBackendProtocol)
