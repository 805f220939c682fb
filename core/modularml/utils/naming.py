"""Validation of user-chosen names (node labels, column keys)."""

from __future__ import annotations

from modularml.errors import InvalidLabelError

__all__ = ["FORBIDDEN_LABEL_CHARS", "validate_label"]

#: Characters that may not appear in a label or column key: they separate the parts of
#: qualified names (``features.voltage.raw``) and of file and reference paths.
FORBIDDEN_LABEL_CHARS: tuple[str, ...] = (".", " ", "/", "\\", ":")


def validate_label(label: object, *, what: str = "label") -> str:
    """Return ``label`` if it is a valid label, otherwise raise.

    Args:
        label: The candidate label.
        what: How to call the value in the error message (``"label"``, ``"column key"``).

    Returns:
        str: ``label`` unchanged.

    Raises:
        InvalidLabelError: If ``label`` is not a non-empty string, or contains ``.``, a space,
            ``/``, ``\\`` or ``:``. The message suggests a corrected label.
    """
    if not isinstance(label, str) or not label:
        raise InvalidLabelError(f"A {what} must be a non-empty string; got {label!r}.")
    bad = [char for char in FORBIDDEN_LABEL_CHARS if char in label]
    if bad:
        suggestion = label
        for char in FORBIDDEN_LABEL_CHARS:
            suggestion = suggestion.replace(char, "_")
        raise InvalidLabelError(
            f"Invalid {what} {label!r}: it contains {', '.join(repr(c) for c in bad)}. A {what} may not "
            f"contain '.', a space, '/', '\\' or ':'; use e.g. {suggestion!r} instead."
        )
    return label
