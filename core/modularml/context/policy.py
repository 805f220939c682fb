"""What happens when a node is registered under a label (or id) that is already taken."""

from __future__ import annotations

from enum import StrEnum

from modularml.errors import InvalidArgumentError
from modularml.utils.environment import IN_NOTEBOOK

__all__ = ["RegistrationPolicy"]


class RegistrationPolicy(StrEnum):
    """How an :class:`~modularml.context.ExperimentContext` handles registrations.

    Members:
        ERROR: A colliding label or node id raises ``ValueError`` (the default in scripts).
        OVERWRITE: The newly registered node replaces the existing one.
        OVERWRITE_WARN: As ``OVERWRITE``, with a warning (the default in notebooks, where
            re-running a cell re-creates its nodes).
        NO_REGISTER: Nothing is registered at all.

    ``RegistrationPolicy(value)`` accepts a member or its value in any case (``"Overwrite"``).
    Being a ``str`` enum, a member compares equal to its value.
    """

    ERROR = "error"
    OVERWRITE = "overwrite"
    OVERWRITE_WARN = "overwrite_warn"
    NO_REGISTER = "no_register"

    @classmethod
    def _missing_(cls, value: object) -> RegistrationPolicy:
        if isinstance(value, str):
            normalized = value.strip().lower().replace("-", "_")
            for member in cls:
                if member.value == normalized:
                    return member
        options = ", ".join(repr(member.value) for member in cls)
        raise InvalidArgumentError(f"Unknown registration policy {value!r}; use one of {options}.")

    @classmethod
    def default(cls) -> RegistrationPolicy:
        """The policy a new context gets when none is given.

        Returns:
            RegistrationPolicy: ``OVERWRITE_WARN`` inside a notebook kernel, ``ERROR`` otherwise.
        """
        return cls.OVERWRITE_WARN if IN_NOTEBOOK else cls.ERROR
