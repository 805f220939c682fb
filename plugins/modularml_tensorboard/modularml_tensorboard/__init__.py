"""The TensorBoard logger of ModularML: ``TensorBoardLogger``, a phase callback registered by that name."""

from modularml_tensorboard.logger import TensorBoardLogger

__all__ = ["TensorBoardLogger"]
__version__ = "2.0.0"
