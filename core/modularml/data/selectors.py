"""Column selection: exact names, ``key``, ``key.rep``, ``domain.key.rep`` and fnmatch wildcards.

Every selection returns fully qualified names (``features.voltage.raw``) in a stable order:
domains in the order features, targets, tags; within a domain, in the order the selectors name
them, a wildcard contributing its matches in table order.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from modularml.data.schema import DATA_DOMAINS, REP_RAW
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidTypeError

__all__ = ["as_list", "find_column", "resolve_domain_selectors", "resolve_selectors"]

_WILDCARD_CHARS = frozenset("*?[")


def as_list(value: str | Sequence[str] | None, what: str = "selector") -> list[str]:
    """``None`` -> ``[]``, a string -> ``[string]``, a sequence of strings -> a list.

    Raises:
        InvalidTypeError: If an element is not a string.
    """
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise InvalidTypeError(f"A {what} is a string; got {type(item).__name__} {item!r}.")
    return items


def _is_pattern(text: str) -> bool:
    return bool(_WILDCARD_CHARS & set(text))


def _domain_pattern(selector: str, domain: str, rep: str | None) -> str:
    """Expand a domain selector to a ``domain.key.rep`` fnmatch pattern."""
    other = [d for d in DATA_DOMAINS if d != domain and selector.startswith(f"{d}.")]
    if other:
        raise InvalidArgumentError(
            f"Selector {selector!r} names domain {other[0]!r} but was given for {domain!r}; pass it as "
            f"{other[0]}={selector!r} or drop the prefix."
        )
    body = selector[len(domain) + 1 :] if selector.startswith(f"{domain}.") else selector
    parts = body.split(".")
    if len(parts) == 1:
        key, key_rep = parts[0], None
    elif len(parts) == 2:
        key, key_rep = parts
    else:
        raise InvalidArgumentError(
            f"Selector {selector!r} is not of the form 'key', 'key.rep' or '{domain}.key.rep' (wildcards allowed)."
        )
    if not key or (key_rep is not None and not key_rep):
        raise InvalidArgumentError(f"Selector {selector!r} has an empty part.")
    return f"{domain}.{key}.{key_rep or rep or '*'}"


def resolve_domain_selectors(
    all_columns: Sequence[str], domain: str, selectors: str | Sequence[str] | None, rep: str | None = None
) -> list[str]:
    """Qualified names of the columns of ``domain`` that ``selectors`` match.

    Args:
        all_columns: The qualified names to choose from.
        domain: The domain the selectors refer to.
        selectors: ``key``, ``key.rep``, ``domain.key.rep`` or wildcard forms; ``None`` selects
            every column of the domain.
        rep: Representation applied where a selector names none; ``None`` matches every
            representation.

    Raises:
        ColumnNotFoundError: If a selector matches nothing; the message lists what exists.
        InvalidArgumentError: If a selector is malformed or names another domain.
    """
    in_domain = [c for c in all_columns if c.startswith(f"{domain}.")]
    items = as_list(selectors)
    if not items:
        items = ["*"]
    chosen: dict[str, None] = {}
    for selector in items:
        pattern = _domain_pattern(selector, domain, rep)
        matched = fnmatch.filter(in_domain, pattern) if _is_pattern(pattern) else [c for c in in_domain if c == pattern]
        if not matched and selectors is not None:
            raise ColumnNotFoundError(
                f"No {domain} column matches {selector!r} (looked for {pattern!r}). Available {domain} columns: "
                f"{in_domain}."
            )
        chosen.update(dict.fromkeys(matched))
    return list(chosen)


def resolve_selectors(
    all_columns: Sequence[str],
    *,
    columns: str | Sequence[str] | None = None,
    features: str | Sequence[str] | None = None,
    targets: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    rep: str | None = None,
    include_all_if_empty: bool = False,
) -> list[str]:
    """Qualified names selected by full-name patterns and per-domain selectors.

    Args:
        all_columns: The qualified names to choose from.
        columns: Fully qualified names or fnmatch patterns over them (``"*.raw"``, ``"features.*"``).
        features: Feature-domain selectors (see :func:`resolve_domain_selectors`).
        targets: Target-domain selectors.
        tags: Tag-domain selectors.
        rep: Representation applied where a domain selector names none.
        include_all_if_empty: Whether a domain that nothing selected contributes all its columns.

    Returns:
        list[str]: The selected names, features first, then targets, then tags.

    Raises:
        ColumnNotFoundError: If a selector matches nothing.
    """
    chosen: dict[str, dict[str, None]] = {d: {} for d in DATA_DOMAINS}
    for selector in as_list(columns, "column name"):
        matched = fnmatch.filter(all_columns, selector) if _is_pattern(selector) else [selector]
        matched = [m for m in matched if m in all_columns]
        if not matched:
            raise ColumnNotFoundError(f"No column matches {selector!r}. Available columns: {list(all_columns)}.")
        for name in matched:
            chosen[name.split(".", 1)[0]][name] = None
    for domain, selectors in zip(DATA_DOMAINS, (features, targets, tags), strict=True):
        if selectors is not None:
            chosen[domain].update(dict.fromkeys(resolve_domain_selectors(all_columns, domain, selectors, rep)))
    if include_all_if_empty:
        for domain in DATA_DOMAINS:
            if not chosen[domain]:
                chosen[domain].update(dict.fromkeys(resolve_domain_selectors(all_columns, domain, None, rep)))
    return [name for domain in DATA_DOMAINS for name in chosen[domain]]


def find_column(all_columns: Sequence[str], selector: str, *, rep: str | None = REP_RAW) -> str:
    """The one column a selector names, looking in every domain.

    ``selector`` is ``key``, ``key.rep``, ``domain.key`` or ``domain.key.rep``. Keys are unique
    across domains, so a bare key is enough; ``rep`` (default ``raw``) applies where the selector
    names no representation, falling back to the only representation if ``rep`` has no column.

    Raises:
        ColumnNotFoundError: If nothing matches.
        InvalidArgumentError: If several columns match.
    """
    if not isinstance(selector, str) or not selector:
        raise InvalidTypeError(f"A column selector is a non-empty string; got {selector!r}.")
    parts = selector.split(".")
    candidates: list[str] = []
    if parts[0] in DATA_DOMAINS and len(parts) in (2, 3):
        candidates = resolve_domain_selectors(all_columns, parts[0], ".".join(parts[1:]), None)
    elif len(parts) <= 2:
        key = parts[0]
        key_rep = parts[1] if len(parts) == 2 else None
        candidates = [
            c for c in all_columns if c.split(".")[1] == key and (key_rep is None or c.split(".")[2] == key_rep)
        ]
    if not candidates:
        raise ColumnNotFoundError(f"No column matches {selector!r}. Available columns: {list(all_columns)}.")
    if len(candidates) > 1 and rep is not None:
        preferred = [c for c in candidates if c.endswith(f".{rep}")]
        candidates = preferred or candidates
    if len(candidates) > 1:
        raise InvalidArgumentError(
            f"Selector {selector!r} matches several columns {candidates}; name the representation, e.g. "
            f"{candidates[0]!r}."
        )
    return candidates[0]
