"""The ``modularml`` command line (also ``python -m modularml``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from modularml._version import __version__
from modularml.errors import PluginConflictError
from modularml.plugins.manager import PluginRecord, get_plugin_manager

__all__ = ["format_plugins", "main"]


def format_plugins(records: Sequence[PluginRecord]) -> str:
    """Human-readable listing: one block per plugin, its distribution, version, status and contributions."""
    lines = []
    for record in records:
        version = record.version or "unknown version"
        head = f"{record.name}  ({record.distribution} {version})"
        if record.status == "failed":
            head += f"  FAILED: {record.error}"
        elif record.status == "disabled":
            head += f"  disabled: {record.error}"
        lines.append(head)
        for kind, names in record.contributions.items():
            lines.append(f"    {kind}: {', '.join(names)}")
        if record.status == "loaded" and not record.contributions:
            lines.append("    (contributes nothing)")
    return "\n".join(lines)


def _plugins_command(args: argparse.Namespace) -> int:
    try:
        records = get_plugin_manager().plugins()
    except PluginConflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        payload = [
            {
                "name": r.name,
                "distribution": r.distribution,
                "version": r.version,
                "module": r.module,
                "status": r.status,
                "error": r.error,
                "contributions": r.contributions,
            }
            for r in records
        ]
        print(json.dumps(payload, indent=2))
    else:
        print(format_plugins(records))
    return 1 if args.strict and any(r.status == "failed" for r in records) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modularml", description="ModularML command line.")
    parser.add_argument("--version", action="version", version=f"modularml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="List installed plugins and what they contribute.")
    plugins.add_argument("--json", action="store_true", help="Print JSON instead of text.")
    plugins.add_argument("--strict", action="store_true", help="Exit with status 1 if any plugin failed to load.")
    plugins.set_defaults(handler=_plugins_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
