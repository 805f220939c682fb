"""What phases show while they run and when they end: bars, a line per epoch, run summaries.

A training phase draws one bar over its epochs and, in a terminal, one bar over the batches of
the current epoch (reused from epoch to epoch; its postfix is the running mean of the training
loss). After every epoch (every few epochs for long runs) it writes one line that stays:

    train  epoch  3/100  train_loss 0.04089  val_loss 0.0129  0.31s

and at its end a summary: epochs run, why it stopped, the epoch restored, the final metrics.
:meth:`Experiment.run` ends with a summary of every phase. Epochs are counted from 1 here, as
the bars count them; results and checkpoint names index them from 0 (``epoch_idx = epoch - 1``).

Where output goes: stderr in a terminal or a script, stdout in a notebook
(:func:`~modularml.utils.environment.display_stream`). Bars are drawn only where they can be:
a terminal (tqdm's control codes) or a notebook (``tqdm.auto`` widgets; one bar per phase, updated
in place). Redirected to a file or a pipe, no bar is drawn, only the plain lines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from modularml.utils.environment import IN_NOTEBOOK, bars_allowed, display_stream

if TYPE_CHECKING:
    from modularml.phases.callback import RunNote

__all__ = [
    "PhaseSummary",
    "TrainingDisplay",
    "default_log_interval",
    "epoch_metrics",
    "format_duration",
    "format_metrics",
    "progress_bar",
    "training_summary",
    "write_experiment_summary",
    "write_line",
]

#: Runs of up to this many epochs get a line every epoch; longer runs one line per ``n_epochs / 100``.
MAX_EPOCH_LINES = 100


@contextmanager
def progress_bar(*, enabled: bool, total: int | None, desc: str, leave: bool, unit: str) -> Iterator[Any]:
    """A tqdm bar (``tqdm.auto``: a widget in notebooks), or a no-op stand-in when disabled or undrawable."""
    if not enabled or not bars_allowed():
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, leave=leave, unit=unit, dynamic_ncols=True, file=display_stream())
    try:
        yield bar
    finally:
        bar.close()


class _NoBar:
    """Stands in for a bar that is not shown."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def reset(self, total: int | None = None) -> None:
        pass

    def set_description_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def format_value(value: float) -> str:
    """A metric value with four significant digits (``0.01903``, ``12.35``, ``1.2e-05``)."""
    return f"{value:.4g}"


def format_metrics(values: Mapping[str, float], *, aligned: bool = False) -> str:
    """``train_loss 0.3234  val_loss 0.01903``: name and value pairs, two spaces apart.

    With ``aligned``, every value but the last is padded to 9 characters, so that the columns of
    consecutive epoch lines line up.
    """
    pairs = [f"{name} {format_value(value)}" for name, value in values.items()]
    if aligned:
        pairs = [f"{name} {format_value(value):<9}" for name, value in values.items()]
    return "  ".join(pairs).rstrip()


def format_duration(seconds: float) -> str:
    """``0.31s``, ``4.2s``, ``1m 05s``, ``2h 03m``."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def default_log_interval(n_epochs: int) -> int:
    """Epochs between two epoch lines: 1 up to :data:`MAX_EPOCH_LINES` epochs, then about 100 lines a run."""
    return 1 if n_epochs <= MAX_EPOCH_LINES else math.ceil(n_epochs / MAX_EPOCH_LINES)


def write_line(text: str, stream: IO[str] | None = None) -> None:
    """Write a line that stays, above any bar being drawn (``tqdm.write``), or plainly where none is."""
    stream = display_stream() if stream is None else stream
    if bars_allowed(stream):
        from tqdm.auto import tqdm

        tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")
        stream.flush()


@dataclass(frozen=True)
class PhaseSummary:
    """The summary of one run of a phase, kept as the phase's ``last_summary``.

    Attributes:
        label (str): The phase's label.
        kind (str): ``"train"``, ``"eval"`` or ``"fit"``.
        seconds (float): How long the run took.
        epochs_run (int | None): Epochs run (training only).
        n_epochs (int | None): Epochs planned (training only).
        notes (tuple[RunNote, ...]): What the callbacks said (why training stopped, what was restored).
        final_metrics (dict[str, float]): Epoch-level metrics of the state the phase left the model in:
            the restored epoch's when a callback restored one, else the last epoch's.
        final_epoch (int | None): Index of the epoch ``final_metrics`` are from (training only).
        n_samples (int | None): Samples evaluated (evaluation only).
    """

    label: str
    kind: str
    seconds: float
    epochs_run: int | None = None
    n_epochs: int | None = None
    notes: tuple[RunNote, ...] = ()
    final_metrics: dict[str, float] = field(default_factory=dict)
    final_epoch: int | None = None
    n_samples: int | None = None

    @property
    def stopped_early(self) -> bool:
        """Whether a callback ended training before ``n_epochs``."""
        return self.epochs_run is not None and self.n_epochs is not None and self.epochs_run < self.n_epochs

    @property
    def restored_epoch(self) -> int | None:
        """Index of the epoch whose state a callback restored, if any."""
        return next((n.restored_epoch for n in self.notes if n.restored_epoch is not None), None)

    def stop_reason(self) -> str:
        """Why training ended: the callback that stopped it, or that every epoch ran."""
        if self.epochs_run is None:
            return ""
        if not self.stopped_early:
            return f"ran all {self.n_epochs} epochs"
        stoppers = [n.text.split(":", 1)[0] for n in self.notes if n.stopped]
        return f"stopped early by {', '.join(stoppers) or 'a callback (request_stop)'}"

    def lines(self) -> list[str]:
        """The summary as the phase writes it at its end."""
        if self.kind != "train":
            return [f"{self._result()} ({format_duration(self.seconds)})"]
        ran = "stopped early" if self.stopped_early else "ran all epochs"
        lines = [f"{self.label}: {self.epochs_run}/{self.n_epochs} epochs in {format_duration(self.seconds)}, {ran}"]
        lines += [f"  {note.text}" for note in self.notes]
        if self.final_metrics:
            where = "restored" if self.restored_epoch is not None else "last"
            lines.append(f"  final ({where} epoch {self.final_epoch + 1}): {format_metrics(self.final_metrics)}")
        return lines

    def _result(self) -> str:
        """``test: eval_loss 0.0143 on 30 samples``, ``fit: fitted on 140 samples``."""
        on = f" on {self.n_samples} samples" if self.n_samples is not None else ""
        metrics = format_metrics(self.final_metrics)
        if self.kind == "fit":
            return f"{self.label}: fitted{on}" + (f", {metrics}" if metrics else "")
        return f"{self.label}: {metrics or 'no loss computed'}{on}"

    def one_line(self) -> str:
        """The phase in one line of the experiment summary."""
        metrics = format_metrics(self.final_metrics)
        if self.kind != "train":
            return self._result()
        restored = f", best epoch {self.restored_epoch + 1} restored" if self.restored_epoch is not None else ""
        head = f"{self.label}: {self.epochs_run}/{self.n_epochs} epochs, {self.stop_reason()}{restored}"
        return head + (f"; {metrics}" if metrics else "")


def epoch_metrics(store: Any, epoch: int, first: Sequence[str] = ()) -> dict[str, float]:
    """The epoch-level metrics logged at ``epoch`` in ``store`` (a MetricStore), those named in ``first`` first."""
    values: dict[str, float] = {}
    for name in [*first, *(n for n in store.names if n not in first)]:
        if name in store:
            value = store.get(name, epoch)
            if value is not None:
                values[name] = float(value)
    return values


def training_summary(
    phase: Any, results: Any, epochs_run: int, seconds: float, first: Sequence[str] = ()
) -> PhaseSummary:
    """The summary of a TrainPhase's run: its callbacks' notes and the metrics of the state it ends in."""
    notes = tuple(note for callback in phase.callbacks if (note := callback.run_note()) is not None)
    restored = next((n.restored_epoch for n in notes if n.restored_epoch is not None), None)
    final_epoch = epochs_run - 1 if restored is None else restored
    metrics = {} if results is None else epoch_metrics(results.metrics(), final_epoch, first)
    return PhaseSummary(
        phase.label,
        "train",
        seconds,
        epochs_run=epochs_run,
        n_epochs=phase.n_epochs,
        notes=notes,
        final_metrics=metrics,
        final_epoch=final_epoch,
    )


class TrainingDisplay:
    """Bars, epoch lines and the summary of one run of a training phase.

    Args:
        label: The phase's label.
        n_epochs: Epochs planned.
        enabled: Show anything at all (``show_training_progress``).
        persist: Leave the epoch bar on screen at the end (``persist_progress``).
        persist_epochs: Leave one batch bar per epoch on screen (``persist_epoch_progress``);
            otherwise one batch bar is reused for every epoch.
        log_every_n_epochs: Epochs between two epoch lines; 0 writes none; None chooses
            (:func:`default_log_interval`). The first and the last epoch always get one.
    """

    def __init__(
        self,
        label: str,
        n_epochs: int,
        *,
        enabled: bool = True,
        persist: bool = False,
        persist_epochs: bool = False,
        log_every_n_epochs: int | None = None,
    ) -> None:
        self.label, self.n_epochs, self.enabled = label, n_epochs, enabled
        self.persist, self.persist_epochs = persist, persist_epochs
        self.every = default_log_interval(n_epochs) if log_every_n_epochs is None else log_every_n_epochs
        self.width = len(str(n_epochs))
        self._epoch_bar: Any = _NoBar()
        self._batch_bar: Any = _NoBar()
        self._bars = enabled and bars_allowed()
        self._started = self._epoch_started = time.perf_counter()
        self._steps = 0
        self._total = 0.0
        self._n_steps = 0

    # ------------------------------------------------------------------ lifetime
    def __enter__(self) -> TrainingDisplay:
        self._started = time.perf_counter()
        if self._bars:
            from tqdm.auto import tqdm

            self._epoch_bar = tqdm(
                total=self.n_epochs,
                desc=self.label,
                leave=self.persist,
                unit="epoch",
                dynamic_ncols=True,
                file=display_stream(),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_batch_bar()
        self._epoch_bar.close()

    @property
    def seconds(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._started

    def _close_batch_bar(self) -> None:
        self._batch_bar.close()
        self._batch_bar = _NoBar()

    # ------------------------------------------------------------------ epochs and batches
    def resume_at(self, epoch: int) -> None:
        """A resumed run starts at epoch index ``epoch``: the epochs before it count as done on the bar."""
        if epoch:
            self._epoch_bar.update(epoch)

    @contextmanager
    def epoch(self, epoch: int, n_steps: int) -> Iterator[None]:
        """The steps of one epoch run inside this block (:meth:`start_epoch` first)."""
        self.start_epoch(epoch, n_steps)
        yield

    def start_epoch(self, epoch: int, n_steps: int) -> None:
        """An epoch (index ``epoch``) of ``n_steps`` steps begins."""
        self._epoch_started = time.perf_counter()
        self._steps, self._total, self._n_steps = 0, 0.0, n_steps
        if not self._bars or n_steps <= 1 or IN_NOTEBOOK:  # a notebook shows one bar per phase
            return
        desc = f"epoch {epoch + 1}/{self.n_epochs}"
        if isinstance(self._batch_bar, _NoBar) or self.persist_epochs:
            self._close_batch_bar()
            from tqdm.auto import tqdm

            self._batch_bar = tqdm(
                total=n_steps,
                desc=desc,
                leave=self.persist_epochs,
                unit="batch",
                dynamic_ncols=True,
                file=display_stream(),
            )
        else:
            self._batch_bar.set_postfix_str("", refresh=False)
            self._batch_bar.set_description_str(desc, refresh=False)
            self._batch_bar.reset(total=n_steps)

    def step(self, loss: float, name: str) -> None:
        """One step ended with training loss ``loss`` (the bars show the epoch's running mean)."""
        self._steps += 1
        self._total += loss
        if not self._bars:
            return
        mean = format_value(self._total / self._steps)
        if IN_NOTEBOOK:
            self._epoch_bar.set_postfix_str(f"batch {self._steps}/{self._n_steps}, {name}={mean}", refresh=False)
            return
        self._batch_bar.set_postfix_str(f"{name}={mean}", refresh=False)
        self._batch_bar.update(1)

    def end_epoch(self, epoch: int, metrics: Mapping[str, float], *, last: bool) -> None:
        """Epoch ``epoch`` ended with the epoch-level ``metrics``: update the bar and maybe write its line."""
        seconds = time.perf_counter() - self._epoch_started
        self._epoch_bar.set_postfix_str(", ".join(f"{k}={format_value(v)}" for k, v in metrics.items()), refresh=False)
        self._epoch_bar.update(1)
        if not self.enabled or self.every == 0:
            return
        number = epoch + 1
        if number == 1 or last or number % self.every == 0:
            write_line(
                f"{self.label}  epoch {number:>{self.width}}/{self.n_epochs}  {format_metrics(metrics, aligned=True)}  "
                f"{format_duration(seconds)}"
            )

    def finish(self, summary: PhaseSummary) -> None:
        """Write the run summary (bars are closed first, so it stays below them)."""
        self.__exit__()
        if self.enabled:
            for line in summary.lines():
                write_line(line)


def write_experiment_summary(label: str, seconds: float, summaries: Sequence[PhaseSummary | None]) -> None:
    """The end of :meth:`Experiment.run`: one line per phase that ran."""
    ran = [s for s in summaries if s is not None]
    write_line(f"Experiment {label!r}: {len(ran)} phase{'s' * (len(ran) != 1)} in {format_duration(seconds)}")
    for summary in ran:
        write_line(f"  {summary.one_line()}")
