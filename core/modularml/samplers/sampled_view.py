"""``SampledView``: what a sampler materialises over its sources: stream name -> list of BatchViews."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from modularml.batches import BatchView
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

__all__ = ["STREAM_DEFAULT", "SampledView"]

#: The name of a sampler's output stream when it has one source.
STREAM_DEFAULT = "default"


class SampledView:
    """The batches of one epoch of a sampler, per output stream, as :class:`BatchView` index arrays.

    Args:
        streams (Mapping[str, Sequence[BatchView]]): Stream name -> batches, in order.
        epoch (int): The epoch these batches are for. Defaults to 0.

    Raises:
        TypeError: If a stream holds something other than BatchViews.
        ValueError: If there is no stream.
    """

    __slots__ = ("_epoch", "_streams")

    def __init__(self, streams: Mapping[str, Sequence[BatchView]], *, epoch: int = 0) -> None:
        if not streams:
            raise InvalidArgumentError("A SampledView needs at least one stream.")
        checked: dict[str, list[BatchView]] = {}
        for name, batches in streams.items():
            batches = list(batches)
            if not all(isinstance(b, BatchView) for b in batches):
                raise InvalidTypeError(f"Stream {name!r} must hold BatchView objects.")
            checked[name] = batches
        self._streams = checked
        self._epoch = int(epoch)

    @classmethod
    def trusted(cls, streams: dict[str, list[BatchView]], epoch: int) -> SampledView:
        """The batches of one epoch by stream, as a sampler made them, without checks."""
        view = cls.__new__(cls)
        view._streams = streams
        view._epoch = epoch
        return view

    @property
    def epoch(self) -> int:
        """The epoch these batches are for."""
        return self._epoch

    @property
    def streams(self) -> dict[str, list[BatchView]]:
        """Stream name -> batches (a new dict; the lists are the view's own)."""
        return dict(self._streams)

    @property
    def stream_names(self) -> list[str]:
        """Names of the output streams."""
        return list(self._streams)

    @property
    def num_streams(self) -> int:
        """Number of output streams."""
        return len(self._streams)

    @property
    def num_batches(self) -> int:
        """Number of batches per stream (the shortest stream's count where streams differ)."""
        return min(len(batches) for batches in self._streams.values())

    def get_stream(self, name: str) -> list[BatchView]:
        """The batches of stream ``name``.

        Raises:
            KeyError: If there is no such stream; the message lists the streams.
        """
        try:
            return self._streams[name]
        except KeyError:
            raise NotRegisteredError(f"No stream {name!r}; this sampler's streams are {self.stream_names}.") from None

    def get_batches(self, stream: str | None = None) -> list[BatchView]:
        """The batches of ``stream``; ``None`` (or ``"default"``) selects the only stream.

        Raises:
            KeyError: If the stream does not exist.
            ValueError: If ``stream`` is None and there are several streams.
        """
        if stream is None or (stream == STREAM_DEFAULT and STREAM_DEFAULT not in self._streams):
            if len(self._streams) != 1:
                raise InvalidArgumentError(
                    f"This sampler has several output streams {self.stream_names}; name the one you want."
                )
            return next(iter(self._streams.values()))
        return self.get_stream(stream)

    def __iter__(self) -> Iterator[dict[str, BatchView]]:
        """Yield, per batch index, stream name -> BatchView (aligned over the streams)."""
        for i in range(self.num_batches):
            yield {name: batches[i] for name, batches in self._streams.items()}

    def __len__(self) -> int:
        return self.num_batches

    def __repr__(self) -> str:
        sizes = {name: len(batches) for name, batches in self._streams.items()}
        return f"SampledView(epoch={self._epoch}, batches={sizes})"
