"""An example ModularML plugin contributing the ``Log1pScaler`` scaler."""

__version__ = "0.1.0"
