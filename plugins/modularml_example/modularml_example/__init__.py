"""An example ModularML plugin contributing the ``Log1pScaler`` scaler."""

__version__ = "2.0.0"
