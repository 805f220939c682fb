"""What the core knows about its sibling distributions without importing them.

Used only to phrase errors: when a user asks for a component that a well-known but
uninstalled distribution provides, the message says what to ``pip install``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KNOWN_BACKENDS", "KNOWN_COMPONENTS", "KnownBackend", "install_hint"]


@dataclass(frozen=True)
class KnownBackend:
    """A backend the project ships as a separate distribution."""

    name: str
    aliases: tuple[str, ...]
    distribution: str
    extra: str


KNOWN_BACKENDS: dict[str, KnownBackend] = {
    b.name: b
    for b in (
        KnownBackend("torch", ("pytorch", "pt"), "modularml-torch", "torch"),
        KnownBackend("tensorflow", ("tf", "keras"), "modularml-tf", "tf"),
        KnownBackend("scikit", ("sklearn", "scikit-learn", "scikit_learn"), "modularml-sklearn", "sklearn"),
    )
}

#: (kind, name) -> extra of the core that provides it.
KNOWN_COMPONENTS: dict[tuple[str, str], str] = {
    ("scalers", name): "sklearn"
    for name in (
        "StandardScaler",
        "MinMaxScaler",
        "MaxAbsScaler",
        "RobustScaler",
        "Normalizer",
        "QuantileTransformer",
        "PowerTransformer",
    )
}


def install_hint(extra: str) -> str:
    """The sentence that tells a user how to install an extra of the core."""
    return f'Install it with: pip install "modularml[{extra}]"'


def known_backend(name: str) -> KnownBackend | None:
    """The well-known backend called ``name`` or one of its aliases, if any."""
    key = name.lower()
    for backend in KNOWN_BACKENDS.values():
        if key == backend.name or key in backend.aliases:
            return backend
    return None
