"""The ModularML exception hierarchy.

Every error raised by ModularML derives from :class:`ModularMLError`. Subclasses also
inherit the built-in exception that the API reference names (``ValueError``,
``TypeError``, ``KeyError``, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import functools

__all__ = [
    "ExecutionError",
    "BackendNotInstalledError",
    "BackendMismatchError",
    "BackendNotSupportedError",
    "ColumnNotFoundError",
    "DeviceError",
    "FileCollisionError",
    "FileWriteError",
    "GraphTopologyError",
    "InvalidArgumentError",
    "InvalidLabelError",
    "InvalidTypeError",
    "LossError",
    "ModelForwardError",
    "ModularMLError",
    "ModularMLWarning",
    "NodeCollisionError",
    "NodeNotFoundError",
    "NodeTypeError",
    "NotFittedError",
    "NotInvertibleError",
    "NotRegisteredError",
    "OptimizerNotSetError",
    "PluginConflictError",
    "PluginError",
    "RegistrationWarning",
    "SerializationError",
]


class ModularMLError(Exception):
    """Base class of every exception raised by ModularML."""


class PluginError(ModularMLError, RuntimeError):
    """A plugin misbehaved: a bad registration, or a failure inside a hook."""


class PluginConflictError(PluginError):
    """Two plugins contributed the same name to the same registry."""


class NotRegisteredError(ModularMLError, KeyError):
    """A name was looked up in a registry that has no entry for it."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class BackendNotSupportedError(ModularMLError, ValueError):
    """A backend name is unknown, or a backend cannot do what was asked."""


class BackendNotInstalledError(BackendNotSupportedError, ImportError):
    """A known backend was requested but its distribution is not installed."""


class DeviceError(ModularMLError, ValueError):
    """A device string is malformed or names a device that is not available."""


class InvalidArgumentError(ModularMLError, ValueError):
    """An argument has a value that is not allowed, or arguments were combined wrongly."""


class InvalidTypeError(ModularMLError, TypeError):
    """An argument is of a type that is not accepted."""


class InvalidLabelError(ModularMLError, ValueError):
    """A label is empty, not a string, or contains a forbidden character."""


class NodeCollisionError(ModularMLError, ValueError):
    """A node's label or id is already taken in an ``ExperimentContext``."""


class NodeNotFoundError(NotRegisteredError):
    """No node with the requested id or label is registered in an ``ExperimentContext``."""


class NodeTypeError(InvalidTypeError):
    """An object is not of the node (or model graph) type that was required."""


class ModularMLWarning(UserWarning):
    """Base class of every warning issued by ModularML."""


class RegistrationWarning(ModularMLWarning):
    """A registration replaced an existing node or model graph."""


class ColumnNotFoundError(ModularMLError, KeyError):
    """A column selector (key, ``key.rep``, qualified name or wildcard) matched no column."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class SerializationError(ModularMLError, ValueError):
    """A ModularML file cannot be read or written.

    Raised for a truncated, corrupt or foreign file, a file of an unsupported format version, and
    an object holding a value that cannot be saved. The message names the file and what is wrong.
    """


class FileCollisionError(ModularMLError, FileExistsError):
    """A save would replace an existing file and ``overwrite`` was not allowed."""


class FileWriteError(ModularMLError, OSError):
    """A file could not be written: the disk is full, permission was denied, the folder is gone.

    The message names the file; ``errno`` is that of the failure, and the original ``OSError`` is
    the ``__cause__``. Saves write atomically, so the file under its real name is left as it was
    and no temporary file remains.
    """


class NotFittedError(ModularMLError, RuntimeError):
    """An object that must be fit first (a scaler) was used before ``fit()``."""


class NotInvertibleError(ModularMLError, NotImplementedError):
    """An inverse was asked of an object that has none (a scaler without ``inverse_transform``)."""


class LossError(ModularMLError, ValueError, RuntimeError):
    """A ``Loss`` is defined wrongly, has no backend where one is needed, or is used in the wrong state.

    It is a ``ValueError`` (bad definitions, as the API reference documents for ``Loss()``) and a
    ``RuntimeError`` (asking a loss that is not built for its keywords).
    """


class OptimizerNotSetError(ModularMLError, RuntimeError):
    """An ``Optimizer`` was used before ``build()``, or built again without ``force_rebuild``."""


class GraphTopologyError(ModularMLError, ValueError):
    """A model graph's connections are invalid: a cycle, a dangling reference, or an edit that breaks them."""


class BackendMismatchError(ModularMLError, RuntimeError):
    """Objects of different backends were combined where one backend is required (a global optimizer)."""


class ExecutionError(ModularMLError, RuntimeError):
    """A work item run by an executor (a cross-validation fold, an ensemble member) failed.

    Every executor raises it alike: the message names the item's position in the input (and its
    ``"label"`` where the item is a mapping with one) and the original exception's type and message,
    and that exception is the ``__cause__`` (for a remote executor, rebuilt in this process).

    Attributes:
        index: Position of the failed item in the input.
        label: The item's ``"label"``, or ``None``.
    """

    def __init__(self, message: str, *, index: int, label: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.label = label

    def __reduce__(self):  # pickles (to and from worker processes) with its keyword arguments
        return (functools.partial(type(self), index=self.index, label=self.label), self.args)


class ModelForwardError(ModularMLError, RuntimeError):
    """A model failed on the batch its node gave it, most often a shape the model does not accept.

    The message names the node, the model and the batch's shape; the model's own error (from the
    framework) is the ``__cause__``.
    """
