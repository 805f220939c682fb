"""The ``modularml`` command line (also ``python -m modularml``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from modularml._version import __version__
from modularml.errors import ModularMLError, PluginConflictError
from modularml.plugins.manager import PluginRecord, get_plugin_manager
from modularml.plugins.registry import BackendInfo

__all__ = ["format_plugins", "main"]


def format_plugins(records: Sequence[PluginRecord], unusable: Sequence[BackendInfo] = ()) -> str:
    """Human-readable listing: one block per plugin, its distribution, version, status and contributions.

    Args:
        records: The plugins, as :meth:`PluginManager.plugins` gives them.
        unusable: Backends whose framework cannot be imported (:meth:`PluginManager.unusable_backends`):
            each is flagged under its plugin, with what to install.
    """
    missing = {info.plugin: [] for info in unusable}
    for info in unusable:
        missing[info.plugin].append(info)
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
        for info in missing.get(record.name, []):
            lines.append(
                f"    NOT USABLE: backend {info.name!r} needs {info.framework_module!r}, which is not installed. "
                f"{info.install_hint()}."
            )
    return "\n".join(lines)


def _plugins_command(args: argparse.Namespace) -> int:
    manager = get_plugin_manager()
    try:
        records = manager.plugins()
        unusable = manager.unusable_backends()
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
                "unusable_backends": {
                    info.name: {"framework_module": info.framework_module, "install": info.install_hint()}
                    for info in unusable
                    if info.plugin == r.name
                },
            }
            for r in records
        ]
        print(json.dumps(payload, indent=2))
    else:
        print(format_plugins(records, unusable))
    if args.strict and unusable:
        for info in unusable:
            print(
                f"error: backend {info.name!r} ({info.distribution}) cannot run: {info.framework_module!r} is not "
                f"installed. {info.install_hint()}.",
                file=sys.stderr,
            )
    return 1 if args.strict and (unusable or any(r.status == "failed" for r in records)) else 0


def _run_command(args: argparse.Namespace) -> int:
    from modularml.context import ExperimentContext

    with ExperimentContext().activate():  # the experiment's context is active only for the command
        return _run_config(args)


def _run_config(args: argparse.Namespace) -> int:
    from modularml.experiment import Experiment
    from modularml.experiment.config_file import describe_experiment, run_experiment

    config = Path(args.config)
    quiet = {"show_sampler_progress": False, "show_training_progress": False} if args.quiet else {}
    try:
        output = Path(args.output) if args.output else config.parent / f"{config.stem}-results"
        if not args.dry_run and (output / "metrics.csv").exists() and not args.overwrite:
            print(
                f"error: {str(output / 'metrics.csv')!r} already exists; pass --overwrite to replace it.",
                file=sys.stderr,
            )
            return 1
        experiment = Experiment.from_file(config, allow_packaged_code=args.allow_packaged_code)
        if args.dry_run:
            print(describe_experiment(experiment))
            print("dry run: the config is valid; nothing was run.")
            return 0
        _, written = run_experiment(experiment, output, overwrite=args.overwrite, **quiet)
    except (ModularMLError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"experiment {experiment.label!r} ran; wrote:")
    for path in written:
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modularml", description="ModularML command line.")
    parser.add_argument("--version", action="version", version=f"modularml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="List installed plugins and what they contribute.")
    plugins.add_argument("--json", action="store_true", help="Print JSON instead of text.")
    plugins.add_argument(
        "--strict",
        action="store_true",
        help="Exit with status 1 if any plugin failed to load, or a backend's framework is not installed.",
    )
    plugins.set_defaults(handler=_plugins_command)
    run = commands.add_parser(
        "run",
        help="Build an experiment from a config file (.toml or .json) and run its plan.",
        description="Build the experiment a config file describes (Experiment.to_file writes one), run its plan, "
        "and write metrics.csv (and the experiment file, where this version can save one) into the output folder.",
    )
    run.add_argument("config", help="The experiment config file (.toml or .json).")
    run.add_argument(
        "--dry-run", action="store_true", help="Build and validate everything, print the plan, run nothing."
    )
    run.add_argument(
        "--output", "-o", help="Folder of the results (default: <config stem>-results next to the config)."
    )
    run.add_argument("--overwrite", action="store_true", help="Replace the results of an earlier run.")
    run.add_argument("--quiet", "-q", action="store_true", help="No progress bars.")
    run.add_argument(
        "--allow-packaged-code",
        action="store_true",
        help="Allow classes from modules outside modularml and the installed plugins (your own code).",
    )
    run.set_defaults(handler=_run_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
