"""Models of the TensorFlow backend: the base class, the Keras wrapper and the built-in architectures."""

from modularml_tf.models.base import TensorflowBaseModel
from modularml_tf.models.cnn import SequentialCNN
from modularml_tf.models.mlp import SequentialMLP
from modularml_tf.models.rnn import SequentialRNN
from modularml_tf.models.wrapper import TensorflowModelWrapper

__all__ = ["SequentialCNN", "SequentialMLP", "SequentialRNN", "TensorflowBaseModel", "TensorflowModelWrapper"]
