"""Models of the torch backend: the base class, the ``nn.Module`` wrapper and the built-in architectures."""

from modularml_torch.models.base import TorchBaseModel
from modularml_torch.models.cnn import SequentialCNN
from modularml_torch.models.mlp import SequentialMLP
from modularml_torch.models.rnn import SequentialRNN
from modularml_torch.models.wrapper import TorchModelWrapper

__all__ = ["SequentialCNN", "SequentialMLP", "SequentialRNN", "TorchBaseModel", "TorchModelWrapper"]
