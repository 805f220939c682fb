"""The TensorFlow backend of ModularML, registered through the ``modularml`` entry point."""

__version__ = "0.1.0"
