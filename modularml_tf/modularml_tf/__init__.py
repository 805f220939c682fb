"""The TensorFlow backend of ModularML, registered through the ``modularml`` entry point."""

__version__ = "2.0.0"
