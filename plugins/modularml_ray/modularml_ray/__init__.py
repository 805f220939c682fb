"""The Ray executor of ModularML: ``RayExecutor``, registered as ``"ray"``.

Importing this package does not import Ray; Ray is imported when an executor first connects.
"""

from modularml_ray.executor import RayExecutor
from modularml_ray.worker import thread_count

__all__ = ["RayExecutor", "thread_count"]
__version__ = "2.0.0"
