"""The MLflow logger of ModularML: ``MLflowLogger``, a phase callback registered as ``"MLflowLogger"``."""

from modularml_mlflow.logger import MLflowLogger

__all__ = ["MLflowLogger"]
__version__ = "2.0.0"
