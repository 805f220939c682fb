"""A trainable ModularML backend on plain numpy, registered through the ``modularml`` entry point.

It needs no ML framework, so ModularML's own tests train models with it, and it is the smallest
complete example of a trainable backend. Importing this package imports nothing else; the backend
and its autograd load when first used (``mml.get_backend("numpy")``).
"""

__version__ = "2.0.0"
