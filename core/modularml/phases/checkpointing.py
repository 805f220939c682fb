"""``Checkpointing``: when and where to save state during a run, and which checkpoints were saved."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["Checkpointing"]

_MODES = ("memory", "disk")
_CONFIG_KEYS = ("mode", "save_on", "every_n", "directory", "name_template", "max_to_keep", "overwrite")
# The argument name of a replacement field: "epoch" in "{epoch:03d}", "{epoch!r}", "{epoch.x}" or "{epoch[0]}".
_FIELD_ARG = re.compile(r"^[^.\[]*")


def _fmt_names(names: Iterable[str]) -> str:
    """``'{a}', '{b}'`` for the sorted names (``none`` when empty)."""
    shown = ", ".join(repr(f"{{{n}}}") for n in sorted(names))
    return shown or "none"


def _fmt_hooks(hooks: Iterable[str]) -> str:
    shown = ", ".join(repr(h) for h in sorted(hooks))
    return shown or "none"


def _placeholders(template: str) -> list[str]:
    """The argument names of the replacement fields of ``template``, in order, duplicates dropped.

    A positional field (``{}``, ``{0}``) gives ``""`` or the index string.

    Raises:
        InvalidArgumentError: If ``template`` is not a valid ``str.format`` template (unbalanced braces).
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidArgumentError(f"name_template {template!r} is not a valid str.format template: {exc}.") from exc
    for _literal, field_name, _spec, _conversion in parsed:
        if field_name is None:
            continue
        match = _FIELD_ARG.match(field_name)
        name = match.group(0) if match else field_name
        if name not in names:
            names.append(name)
    return names


class Checkpointing:
    """Automatic state checkpointing configuration and tracker.

    Manages when and where to save, and tracks the saved checkpoints. The actual save/restore
    operations are performed by the parent object (``TrainPhase`` for model state, ``Experiment``
    for the full experiment state, including results).

    The parent asks :meth:`should_save` at each lifecycle hook it fires; when it returns True, the
    parent takes a snapshot and records it with :meth:`record_memory` (memory mode) or writes a file
    (passing :attr:`overwrite` to its save call) and records its path with :meth:`record_disk`
    (disk mode). At most :attr:`max_to_keep` checkpoints are kept, in both modes: recording one more
    drops the oldest recorded one, and in disk mode deletes its file.

    Args:
        mode (Literal["memory", "disk"]): Storage mode. ``"memory"`` keeps in-memory state
            snapshots (fast, no I/O); ``"disk"`` writes checkpoint files (persistent). Defaults to
            ``"memory"``.
        save_on (str | list[str]): Lifecycle hook(s) at which to save. Valid hooks depend on the
            parent: ``TrainPhase``: phase_start, phase_end, epoch_start, epoch_end, batch_start,
            batch_end; ``Experiment``: phase_start, phase_end, group_start, group_end (the parent
            checks them with :meth:`validate_for`). Duplicates are dropped. Defaults to
            ``"epoch_end"``.
        every_n (int): Save on every ``every_n``-th occurrence of each hook (for ``epoch_end``:
            every N epochs). Defaults to 1.
        directory (Path | str | None): Directory of disk checkpoints; ignored in memory mode. When
            None, the parent assigns one with :meth:`set_directory` (a ``TrainPhase`` inherits the
            directory of its Experiment, under a ``{phase.label}/`` subdirectory).
        name_template (str | None): ``str.format`` template of checkpoint names. Placeholders
            depend on the parent: ``TrainPhase``: ``{phase}``, ``{epoch}``, ``{batch}``;
            ``Experiment``: ``{label}``. When None, the parent assigns a default with
            :meth:`set_default_name_template`.
        max_to_keep (int | None): Maximum number of checkpoints kept; the oldest recorded one is
            removed when it is exceeded. None keeps all. Defaults to None.
        overwrite (bool): Whether disk checkpoints may overwrite existing files; the parent passes
            it to its save call. Defaults to True.

    Raises:
        InvalidArgumentError: If a value is not allowed (unknown mode or hook, empty ``save_on``,
            ``every_n`` or ``max_to_keep`` not an int >= 1, malformed template, empty directory).
        InvalidTypeError: If ``save_on``, ``directory``, ``name_template`` or ``overwrite`` has a
            type that is not accepted.
    """

    #: Every lifecycle hook a parent may fire.
    VALID_HOOKS: frozenset[str] = frozenset(
        {
            "phase_start",
            "phase_end",
            "epoch_start",
            "epoch_end",
            "batch_start",
            "batch_end",
            "group_start",
            "group_end",
        }
    )
    #: Hooks valid for a Checkpointing attached to a ``TrainPhase``.
    TRAIN_PHASE_HOOKS: frozenset[str] = frozenset(
        {"phase_start", "phase_end", "epoch_start", "epoch_end", "batch_start", "batch_end"}
    )
    #: Hooks valid for a Checkpointing attached to an ``Experiment``.
    EXPERIMENT_HOOKS: frozenset[str] = frozenset({"phase_start", "phase_end", "group_start", "group_end"})
    #: Name-template placeholders of a ``TrainPhase``.
    TRAIN_PHASE_PLACEHOLDERS: frozenset[str] = frozenset({"phase", "epoch", "batch"})
    #: Name-template placeholders of an ``Experiment``.
    EXPERIMENT_PLACEHOLDERS: frozenset[str] = frozenset({"label"})

    def __init__(
        self,
        *,
        mode: Literal["memory", "disk"] = "memory",
        save_on: str | list[str] = "epoch_end",
        every_n: int = 1,
        directory: Path | str | None = None,
        name_template: str | None = None,
        max_to_keep: int | None = None,
        overwrite: bool = True,
    ) -> None:
        if not isinstance(mode, str) or mode not in _MODES:
            raise InvalidArgumentError(f"Checkpointing mode must be one of 'memory', 'disk'; got {mode!r}.")
        if isinstance(every_n, bool) or not isinstance(every_n, int) or every_n < 1:
            raise InvalidArgumentError(f"Checkpointing every_n must be an int >= 1; got {every_n!r}.")
        if max_to_keep is not None and (
            isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1
        ):
            raise InvalidArgumentError(f"Checkpointing max_to_keep must be None or an int >= 1; got {max_to_keep!r}.")
        if not isinstance(overwrite, bool):
            raise InvalidTypeError(f"Checkpointing overwrite must be a bool; got {overwrite!r}.")
        self._mode: str = mode
        self._save_on: list[str] = self._check_save_on(save_on)
        self._every_n: int = every_n
        self._directory: Path | None = self._check_directory(directory, "directory")
        self._name_template: str | None = self._check_template(name_template, "name_template")
        self._max_to_keep: int | None = max_to_keep
        self._overwrite: bool = overwrite
        # Assigned by the parent; used only where the user left the argument None.
        self._default_directory: Path | None = None
        self._default_name_template: str | None = None
        # Tracked checkpoints, oldest recorded first (dict insertion order).
        self._states: dict[int | str, dict[str, Any]] = {}
        self._paths: dict[int | str, Path] = {}
        self._hook_counts: dict[str, int] = {}

    # ------------------------------------------------------------------ validation helpers
    @classmethod
    def _check_save_on(cls, save_on: Any) -> list[str]:
        if isinstance(save_on, str):
            hooks = [save_on]
        elif isinstance(save_on, (list, tuple)):
            hooks = list(save_on)
        else:
            raise InvalidTypeError(
                f"Checkpointing save_on must be a hook name or a list of hook names; got {type(save_on).__name__}."
            )
        if not hooks:
            raise InvalidArgumentError(
                f"Checkpointing save_on must name at least one hook; valid hooks: {_fmt_hooks(cls.VALID_HOOKS)}."
            )
        not_str = [h for h in hooks if not isinstance(h, str)]
        if not_str:
            raise InvalidTypeError(f"Checkpointing save_on holds hook names (str); got {not_str!r}.")
        unknown = [h for h in hooks if h not in cls.VALID_HOOKS]
        if unknown:
            raise InvalidArgumentError(
                f"Checkpointing save_on has unknown hook(s) {unknown!r}; valid hooks: {_fmt_hooks(cls.VALID_HOOKS)}."
            )
        return list(dict.fromkeys(hooks))

    @staticmethod
    def _check_directory(directory: Any, what: str) -> Path | None:
        if directory is None:
            return None
        if not isinstance(directory, (str, os.PathLike)):
            raise InvalidTypeError(
                f"Checkpointing {what} must be None, a str or a path; got {type(directory).__name__}."
            )
        if isinstance(directory, str) and not directory:
            raise InvalidArgumentError(f"Checkpointing {what} must not be an empty string.")
        return Path(directory)

    @staticmethod
    def _check_template(template: Any, what: str) -> str | None:
        if template is None:
            return None
        if not isinstance(template, str):
            raise InvalidTypeError(f"Checkpointing {what} must be None or a str; got {type(template).__name__}.")
        _placeholders(template)  # raises on a malformed template
        return template

    @staticmethod
    def _check_key(key: Any) -> None:
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise InvalidTypeError(f"A checkpoint key is an int or a str; got {key!r} ({type(key).__name__}).")

    # ------------------------------------------------------------------ properties
    @property
    def mode(self) -> str:
        """Get the storage mode.

        Returns:
            str: Either ``"memory"`` or ``"disk"``.
        """
        return self._mode

    @property
    def save_on(self) -> list[str]:
        """Get the hook names at which checkpoints are saved.

        Returns:
            list[str]: Lifecycle hooks configured for saving (a copy).
        """
        return list(self._save_on)

    @property
    def every_n(self) -> int:
        """Get the save frequency.

        Returns:
            int: Number of hook invocations between saves.
        """
        return self._every_n

    @property
    def directory(self) -> Path | None:
        """Get the checkpoint directory.

        The directory given to the constructor wins; otherwise the one assigned by the parent with
        :meth:`set_directory`; otherwise None.

        Returns:
            Path | None: Disk directory used when mode is ``"disk"``.
        """
        return self._directory if self._directory is not None else self._default_directory

    @property
    def name_template(self) -> str | None:
        """Get the template for checkpoint names.

        The template given to the constructor wins; otherwise the default assigned by the parent
        with :meth:`set_default_name_template`; otherwise None.

        Returns:
            str | None: Template string with placeholders such as ``{phase}``.
        """
        return self._name_template if self._name_template is not None else self._default_name_template

    @property
    def max_to_keep(self) -> int | None:
        """Get the limit on retained checkpoints.

        Returns:
            int | None: Maximum number of checkpoints kept; None keeps all.
        """
        return self._max_to_keep

    @property
    def overwrite(self) -> bool:
        """Determine if disk checkpoints overwrite existing files.

        Checkpointing writes no file itself: the parent passes this value to its save call.

        Returns:
            bool: True if overwrites are allowed.
        """
        return self._overwrite

    @property
    def saved_keys(self) -> list[int | str]:
        """List cache keys for which checkpoints exist.

        In disk mode, keys whose file no longer exists are left out.

        Returns:
            list[int | str]: Keys in sorted order: int keys first (ascending), then str keys
            (ascending), so mixed keys never fail to sort.
        """
        keys = list(self._states) if self._mode == "memory" else [k for k, p in self._paths.items() if p.exists()]
        return sorted(keys, key=lambda k: (1, 0, k) if isinstance(k, str) else (0, k, ""))

    # ------------------------------------------------------------------ parent-assigned defaults
    def set_default_name_template(self, template: str | None) -> None:
        """Assign the context-appropriate default name template (called by the parent).

        The default applies only while no ``name_template`` was given to the constructor; calling
        again replaces the previous default. It is not part of :meth:`get_config`.

        Args:
            template (str | None): Default ``str.format`` template; None clears the default.

        Raises:
            InvalidTypeError: If ``template`` is neither None nor a str.
            InvalidArgumentError: If ``template`` is not a valid ``str.format`` template.
        """
        self._default_name_template = self._check_template(template, "default name template")

    def set_directory(self, path: Path | str | None) -> None:
        """Assign the directory inherited from the parent (called by the parent).

        The assigned directory applies only while no ``directory`` was given to the constructor;
        calling again replaces it (so a phase run in another Experiment inherits that one). It is
        not part of :meth:`get_config`.

        Args:
            path (Path | str | None): Directory for disk checkpoints; None clears it.

        Raises:
            InvalidTypeError: If ``path`` is neither None, a str nor a path.
            InvalidArgumentError: If ``path`` is an empty string.
        """
        self._default_directory = self._check_directory(path, "directory")

    # ------------------------------------------------------------------ hooks and names
    def should_save(self, hook: str) -> bool:
        """Check if a save should occur for this hook.

        Checks whether ``hook`` is in :attr:`save_on` and whether the ``every_n`` condition is
        satisfied. Each configured hook has its own counter, incremented on every call for that
        hook; the result is True on the ``every_n``-th, ``2*every_n``-th, ... call (always with
        ``every_n=1``). Calls for a hook not in :attr:`save_on` return False and count nothing.

        Args:
            hook (str): The lifecycle hook name.

        Returns:
            bool: True if a checkpoint should be saved.

        Raises:
            InvalidArgumentError: If ``hook`` is not a known lifecycle hook.
        """
        if hook not in self.VALID_HOOKS:
            raise InvalidArgumentError(f"Unknown lifecycle hook {hook!r}; valid hooks: {_fmt_hooks(self.VALID_HOOKS)}.")
        if hook not in self._save_on:
            return False
        count = self._hook_counts.get(hook, 0) + 1
        self._hook_counts[hook] = count
        return count % self._every_n == 0

    def format_name(self, **kwargs: Any) -> str:
        """Format the name template with provided key-value pairs.

        Args:
            **kwargs (Any): Values to substitute into the name template (``str.format``). Common
                keys: label, key, phase, epoch, batch. Extra keys are ignored.

        Returns:
            str: The formatted checkpoint name.

        Raises:
            InvalidArgumentError: If no name template is set, or the template has a placeholder
                without a value (the message names the placeholder and the template).
        """
        template = self.name_template
        if template is None:
            raise InvalidArgumentError(
                "Checkpointing has no name_template: pass name_template= or attach it to a TrainPhase or Experiment."
            )
        try:
            return template.format(**kwargs)
        except KeyError as exc:
            missing = exc.args[0] if exc.args else "?"
            raise InvalidArgumentError(
                f"Checkpoint name template {template!r} needs a value for placeholder {{{missing}}}; "
                f"values were given for: {', '.join(repr(k) for k in sorted(kwargs)) or 'none'}."
            ) from exc
        except IndexError as exc:
            raise InvalidArgumentError(
                f"Checkpoint name template {template!r} has a positional placeholder; use named ones such as {{epoch}}."
            ) from exc

    @staticmethod
    def validate_placeholders(template: str, allowed: frozenset[str], context_name: str) -> None:
        """Validate that a name template only uses allowed placeholders.

        Placeholders are read with ``string.Formatter().parse``; the argument name of a field
        counts (``{epoch:03d}`` uses ``epoch``). Positional fields (``{}``, ``{0}``) are never
        allowed.

        Args:
            template (str): The name template string to validate.
            allowed (frozenset[str]): Set of allowed placeholder names.
            context_name (str): Name of the context (for error messages).

        Raises:
            InvalidArgumentError: If the template contains disallowed placeholders (a ValueError;
                the message names them, the allowed ones and the context), or is malformed.
            InvalidTypeError: If ``template`` is not a str.
        """
        if not isinstance(template, str):
            raise InvalidTypeError(f"A name template is a str; got {type(template).__name__}.")
        allowed_set = frozenset(allowed)
        bad = [name for name in _placeholders(template) if name not in allowed_set]
        if bad:
            raise InvalidArgumentError(
                f"Checkpoint name template {template!r} uses placeholder(s) {', '.join(repr(f'{{{b}}}') for b in bad)} "
                f"not available for {context_name}; allowed placeholders: {_fmt_names(allowed_set)}."
            )

    def validate_for(
        self, context_name: str, allowed_hooks: frozenset[str], allowed_placeholders: frozenset[str]
    ) -> None:
        """Check this configuration for the context of a parent (called by the parent).

        Checks that every hook of :attr:`save_on` is allowed, and that the current
        :attr:`name_template` (if any) uses only allowed placeholders.

        Args:
            context_name (str): Name of the parent context (for error messages), e.g.
                ``"TrainPhase 'fit'"``.
            allowed_hooks (frozenset[str]): Hooks the parent fires, e.g.
                :attr:`TRAIN_PHASE_HOOKS`.
            allowed_placeholders (frozenset[str]): Placeholders the parent fills, e.g.
                :attr:`TRAIN_PHASE_PLACEHOLDERS`.

        Raises:
            InvalidArgumentError: If a hook or a placeholder is not allowed in this context.
        """
        hooks = frozenset(allowed_hooks)
        bad = [h for h in self._save_on if h not in hooks]
        if bad:
            raise InvalidArgumentError(
                f"Checkpointing save_on hook(s) {bad!r} are not available for {context_name}; "
                f"allowed hooks: {_fmt_hooks(hooks)}."
            )
        template = self.name_template
        if template is not None:
            self.validate_placeholders(template, frozenset(allowed_placeholders), context_name)

    # ------------------------------------------------------------------ tracked checkpoints
    def record_memory(self, key: int | str, state: dict[str, Any]) -> None:
        """Record an in-memory state snapshot.

        The state is stored as given (no copy): pass a fresh snapshot (such as the one
        ``ModelGraph.get_state()`` returns) and do not mutate it afterwards. Recording an existing
        key replaces its state and makes it the newest. If more than :attr:`max_to_keep`
        checkpoints are then kept, the oldest recorded ones are dropped.

        Args:
            key (int | str): Identifier for this checkpoint (e.g. epoch index or phase label).
            state (dict[str, Any]): The state dictionary to store.

        Raises:
            InvalidArgumentError: If the mode is not ``"memory"``.
            InvalidTypeError: If ``key`` is not an int or str, or ``state`` is not a dict.
        """
        if self._mode != "memory":
            raise InvalidArgumentError(
                f"record_memory() needs mode='memory'; this Checkpointing has mode={self._mode!r} (use record_disk())."
            )
        self._check_key(key)
        if not isinstance(state, dict):
            raise InvalidTypeError(f"record_memory() stores a state dict; got {type(state).__name__}.")
        self._states.pop(key, None)
        self._states[key] = state
        while self._max_to_keep is not None and len(self._states) > self._max_to_keep:
            del self._states[next(iter(self._states))]

    def record_disk(self, key: int | str, path: Path) -> None:
        """Record a disk checkpoint path.

        Recording an existing key replaces its path and makes it the newest (the file previously
        recorded for it is not deleted). If more than :attr:`max_to_keep` checkpoints are then
        kept, the oldest recorded ones are dropped and their files deleted from disk (a file
        already gone is tolerated; a file still recorded for a kept key is not deleted).

        Args:
            key (int | str): Identifier for this checkpoint.
            path (Path): The saved checkpoint file path (a str is accepted too).

        Raises:
            InvalidArgumentError: If the mode is not ``"disk"``.
            InvalidTypeError: If ``key`` is not an int or str, or ``path`` is not a str or path.
        """
        if self._mode != "disk":
            raise InvalidArgumentError(
                f"record_disk() needs mode='disk'; this Checkpointing has mode={self._mode!r} (use record_memory())."
            )
        self._check_key(key)
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(f"record_disk() needs a file path; got {type(path).__name__}.")
        self._paths.pop(key, None)
        self._paths[key] = Path(path)
        while self._max_to_keep is not None and len(self._paths) > self._max_to_keep:
            old_key = next(iter(self._paths))
            old_path = self._paths.pop(old_key)
            kept = {p.resolve() for p in self._paths.values()}
            if old_path.resolve() not in kept:
                old_path.unlink(missing_ok=True)

    def get_path(self, key: int | str) -> Path | None:
        """Return the disk checkpoint path for a given key.

        Only available in disk mode. Returns None if no path exists or if in memory mode.

        Args:
            key (int | str): Identifier previously supplied to :meth:`record_disk`.

        Returns:
            Path | None: Checkpoint path if it exists on disk.
        """
        path = self._paths.get(key)
        if path is None or not path.exists():
            return None
        return path

    def get_state(self, key: int | str) -> dict[str, Any] | None:
        """Return the in-memory state dict for a given key.

        Only available in memory mode. Returns None if no state exists or if in disk mode. The
        stored dict itself is returned (no copy).

        Args:
            key (int | str): Identifier previously supplied to :meth:`record_memory`.

        Returns:
            dict[str, Any] | None: Stored state if available.
        """
        return self._states.get(key)

    def has_key(self, key: int | str) -> bool:
        """Check whether a checkpoint exists for the given key.

        In memory mode: a state was recorded for ``key``. In disk mode: a path was recorded for
        ``key`` and the file still exists.

        Args:
            key (int | str): Identifier to query.

        Returns:
            bool: True if the checkpoint is available.
        """
        if self._mode == "memory":
            return key in self._states
        return self.get_path(key) is not None

    def forget(self, key: int | str) -> None:
        """Stop tracking ``key`` without touching any file (its file now holds another checkpoint).

        A parent calls this when a name template gives a later checkpoint the file of an earlier
        one (a rolling ``"{phase}_latest"``): the earlier key must not claim the new content.
        """
        self._states.pop(key, None)
        self._paths.pop(key, None)

    def reset(self) -> None:
        """Clear all tracked states and counters.

        Called by the parent at the start of a new phase or experiment run to ensure fresh
        checkpointing state. Forgets tracked states and paths (files on disk are left alone) and
        resets the hook counters; the configuration and parent-assigned defaults are kept.
        """
        self._states.clear()
        self._paths.clear()
        self._hook_counts.clear()

    def records(self) -> dict[str, Any]:
        """The disk checkpoints recorded so far and the hook counters, as plain data.

        A resumable checkpoint stores them, so that a resumed run keeps counting ``every_n`` where
        it stopped, still enforces ``max_to_keep`` on the files recorded before, and finds them
        (``EarlyStopping`` restoring its best epoch). Memory states are not included.

        Returns:
            dict[str, Any]: ``paths`` (``[key, path]`` pairs, oldest first) and ``hook_counts``.
        """
        return {
            "paths": [[key, str(path)] for key, path in self._paths.items()],
            "hook_counts": dict(self._hook_counts),
        }

    def restore_records(self, records: dict[str, Any]) -> None:
        """Put back :meth:`records` output (replacing what is tracked now).

        Raises:
            InvalidArgumentError: If ``records`` is malformed.
        """
        try:
            paths = {}
            for key, path in records["paths"]:
                self._check_key(key)
                paths[key] = Path(path)
            counts = {str(hook): int(count) for hook, count in dict(records["hook_counts"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"Not Checkpointing records: {exc}") from None
        unknown = sorted(set(counts) - self.VALID_HOOKS)
        if unknown:
            raise InvalidArgumentError(f"Checkpointing records count unknown hooks {unknown}.")
        self._paths, self._hook_counts = paths, counts

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Return configuration details required to reconstruct this object.

        Holds the constructor arguments (``directory`` as a str or None); parent-assigned defaults
        and tracked checkpoints are not included.

        Returns:
            dict[str, Any]: Keys ``mode``, ``save_on``, ``every_n``, ``directory``,
            ``name_template``, ``max_to_keep`` and ``overwrite``.
        """
        return {
            "mode": self._mode,
            "save_on": list(self._save_on),
            "every_n": self._every_n,
            "directory": None if self._directory is None else str(self._directory),
            "name_template": self._name_template,
            "max_to_keep": self._max_to_keep,
            "overwrite": self._overwrite,
        }

    @classmethod
    def from_config(cls, config: dict) -> Checkpointing:
        """Construct from config data.

        Args:
            config (dict): Serialized configuration produced by :meth:`get_config`; missing keys
                take the constructor defaults.

        Returns:
            Checkpointing: Reconstructed checkpointing helper.

        Raises:
            InvalidTypeError: If ``config`` is not a dict.
            InvalidArgumentError: If ``config`` has unknown keys or a value that is not allowed.
        """
        if not isinstance(config, dict):
            raise InvalidTypeError(f"Checkpointing.from_config() needs a dict; got {type(config).__name__}.")
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise InvalidArgumentError(
                f"Checkpointing config has unknown key(s) {unknown!r}; known keys: {list(_CONFIG_KEYS)!r}."
            )
        return cls(**config)

    def __repr__(self) -> str:
        directory = self.directory
        return (
            f"Checkpointing(mode={self._mode!r}, save_on={self._save_on!r}, every_n={self._every_n!r}, "
            f"directory={None if directory is None else str(directory)!r}, "
            f"name_template={self.name_template!r}, max_to_keep={self._max_to_keep!r}, "
            f"overwrite={self._overwrite!r})"
        )
