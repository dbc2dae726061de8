"""Streams: an async iterable read into an actor's mailbox, and replies that are streams.

``ctx.add_stream(items)`` (Cinema's ``add_stream``) delivers each item to the actor as a
message, in order, then :class:`StreamFinished`; a :class:`StreamFeed` task reads the
next item only once the mailbox took the last one.  ``ref.stream(request)`` (Pulsing's
streaming replies) asks an actor whose ``receive`` returns an async iterable, and reads
that iterable's items: a :class:`Producer` task runs it beside the actor and sends items
only while the :class:`ReplyStream` reading them has granted credit.  The producer and
the reader meet directly on one node and through the actor transport across nodes; they
behave the same way.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from .cell_task import CellTask
from .errors import ActorError, ActorFailed, ActorStopped, AskTimeout
from .ref import DEFAULT_STREAM_WINDOW, current_sender

if TYPE_CHECKING:
    from .cell import ActorCell

__all__ = [
    "DEFAULT_STREAM_WINDOW",
    "Producer",
    "ReplyStream",
    "Sink",
    "StreamFeed",
    "StreamFinished",
    "StreamLink",
    "as_source",
    "failure",
    "open_local",
]


@attrs.frozen(eq=False)
class StreamFinished:
    """The last message of a stream added with ``ctx.add_stream``: ``error`` is None when
    the iterable ran out, else what it raised (raise it in ``receive`` to hand it to
    supervision)."""

    stream: StreamFeed
    error: Exception | None = None


class StreamFeed(CellTask):
    """A stream being read into an actor's mailbox (``ctx.add_stream``); cancelled when
    the actor stops or restarts (then no further item and no :class:`StreamFinished`)."""

    __slots__ = ()

    async def run(self, items: AsyncIterable[Any]) -> None:
        """Read ``items`` into the actor's mailbox, then send it :class:`StreamFinished`
        (not after a cancel)."""
        cell = self._cell
        try:
            with self._scope:
                error: Exception | None = None
                try:
                    iterator = aiter(items)
                    try:
                        async for item in iterator:
                            await cell.feed(item)
                    finally:
                        await _close(iterator)
                except Exception as exc:
                    error = exc
                await cell.feed(StreamFinished(self, error))
        finally:
            cell.forget_stream(self)


async def _close(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator (runs its ``finally``); other iterators have nothing to do."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def as_source(result: Any) -> AsyncIterable[Any]:
    """The async iterable an actor answered a stream request with; :class:`ActorFailed`
    (TypeError) when it answered something else."""
    if not hasattr(result, "__aiter__"):
        answer = type(result).__qualname__
        raise ActorFailed(
            "TypeError", f"a stream request was answered with {answer}, not an async iterable"
        )
    return result  # type: ignore[no-any-return]


def failure(error: BaseException) -> ActorError:
    """How a producer's error reaches the reader: the typed errors of ``ask``."""
    return error if isinstance(error, ActorError) else ActorFailed.from_exception(error)


# -- reply streams ---------------------------------------------------------------------


class Sink(Protocol):
    """Where a producer's items go: the reader itself on this node, a connection else."""

    def emit(self, item: Any) -> None:
        """One item (:class:`Unsendable` when it cannot reach the reader)."""

    def end(self, error: BaseException | None) -> None:
        """The stream is over (``error``: how it failed)."""


class StreamLink(Protocol):
    """How a reader reaches its producer: grant credit, cancel."""

    def grant(self, n: int) -> None: ...

    def cancel(self) -> None: ...


class Producer:
    """Runs the async iterable answering a stream request, sending an item only while
    the reader has credit for it (so the iterable is read no faster than the reader)."""

    __slots__ = ("_scope", "_source", "_stopped", "_waiting", "cell", "credit", "sink")

    # _stopped: None while the reader may get items, else why the actor ended the stream

    def __init__(
        self, cell: ActorCell | None, source: AsyncIterable[Any], sink: Sink, credit: int
    ) -> None:
        self.cell = cell
        self.sink = sink
        self.credit = credit
        self._source = source
        self._scope = trio.CancelScope()
        self._waiting: trio.lowlevel.Task | None = None
        self._stopped: str | None = None

    def grant(self, n: int) -> None:
        """The reader may take ``n`` more items: wake the producer if it waits for credit."""
        self.credit += n
        task, self._waiting = self._waiting, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    def cancel(self) -> None:
        """The reader is gone: stop without ending the stream."""
        self._scope.cancel()

    def stop(self, reason: str) -> None:
        """The actor stops or restarts (``reason``): the reader gets :class:`ActorStopped`."""
        self._stopped = reason
        self._scope.cancel()

    async def _credit(self) -> None:
        """Wait for the reader to grant more items."""
        self._waiting = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._waiting = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def run(self) -> None:
        """Send the iterable's items while the reader has credit, then its end (or error)."""
        cell = self.cell
        if cell is not None:
            current_sender.set(cell.ref)
        error: BaseException | None = None
        try:
            with self._scope:
                await trio.lowlevel.checkpoint_if_cancelled()  # stopped before it started
                try:
                    iterator = aiter(self._source)
                    try:
                        while True:
                            if not self.credit:
                                await self._credit()
                            try:
                                item = await anext(iterator)
                            except StopAsyncIteration:
                                break
                            self.credit -= 1
                            self.sink.emit(item)
                    finally:
                        await _close(iterator)
                except Exception as exc:
                    error = exc
            if self._stopped is not None:
                self.sink.end(ActorStopped(self._stopped))
            elif not self._scope.cancelled_caught:
                self.sink.end(error)
        finally:
            if cell is not None:
                cell.forget_stream(self)


_OPEN: Any = object()


class ReplyStream:
    """The items of a streamed reply (what ``ref.stream`` returns): an async iterator.

    Stopping early cancels the producer: leaving the ``async for`` (the stream is then
    dropped), :meth:`aclose`, or the reading task being cancelled.  Errors are those of
    ``ask``: :class:`ActorFailed` when the producer raised, :class:`ActorStopped`,
    :class:`NodeDown` when the producer's node is lost, :class:`AskTimeout` when no item
    came within ``timeout`` seconds.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_end",
        "_half",
        "_open",
        "_read",
        "_task",
        "link",
        "timeout",
        "window",
    )

    def __init__(
        self,
        open_: Callable[[ReplyStream], Awaitable[None]],
        window: int,
        timeout: float | None,
    ) -> None:
        self._open: Callable[[ReplyStream], Awaitable[None]] | None = open_
        self.window = window
        self.timeout = timeout
        self.link: StreamLink | None = None
        """Set by the opener once the request went out."""
        self._buffer: deque[Any] = deque()
        self._end: Any = _OPEN
        """_OPEN while items may come; then None (complete) or the error to raise."""
        self._read = 0
        self._half = max(1, window // 2)
        """Items read between grants: half the window, so the producer never runs dry."""
        self._task: trio.lowlevel.Task | None = None

    # -- the producer's side (a Sink) --------------------------------------------------

    def emit(self, item: Any) -> None:
        self._buffer.append(item)
        self._wake()

    def emit_all(self, items: list[Any]) -> None:
        """:meth:`emit` each of ``items`` (a burst from another node)."""
        self._buffer.extend(items)
        self._wake()

    def end(self, error: BaseException | None) -> None:
        if self._end is _OPEN:
            self._end = None if error is None else failure(error)
            self.link = None
            self._wake()

    def _wake(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    # -- the reader's side -------------------------------------------------------------

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> Any:
        buffer = self._buffer
        if not buffer:  # (an item at hand is taken with no await and no call)
            await self._refill()
            if not buffer:
                end, self._end = self._end, None
                if end is None:
                    raise StopAsyncIteration
                raise end
        read = self._read + 1
        if read >= self._half:
            link = self.link
            if link is not None:
                link.grant(read)
            read = 0
        self._read = read
        return buffer.popleft()

    async def _refill(self) -> None:
        """Open the stream (on the first read), then wait for items while it is open."""
        if self._open is not None:
            open_, self._open = self._open, None
            try:
                await open_(self)
            except BaseException as exc:
                self.end(exc if isinstance(exc, Exception) else None)
                self.cancel()
                raise
        if not self._buffer and self._end is _OPEN:
            await self._wait()

    async def _wait(self) -> None:
        deadline = math.inf if self.timeout is None else trio.current_time() + self.timeout
        try:
            with trio.move_on_at(deadline):
                self._task = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort)
                return
        except BaseException:  # the reading task is cancelled: so is the stream
            self.cancel()
            self._end = ActorStopped("the stream was cancelled while its reader waited")
            raise
        self.cancel()
        self._end = AskTimeout(f"no stream item within {self.timeout} s")

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def cancel(self) -> None:
        """Stop the producer (at most once); items already here are dropped."""
        self._open = None
        link, self.link = self.link, None
        self._buffer.clear()
        if self._end is _OPEN:
            self._end = None
        if link is not None:
            link.cancel()

    async def aclose(self) -> None:
        """Stop reading: the producer is told to cancel."""
        self.cancel()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    def __del__(self) -> None:
        # A reader that left its ``async for`` drops the stream: that cancels it.
        if self.link is not None:
            with contextlib.suppress(Exception):  # never raise out of a finalizer
                self.cancel()


class _Reader:
    """A sink for a producer on the reader's node: the reader, held weakly, so a reader
    dropped by its task is freed at once (and its finalizer cancels the producer)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ReplyStream) -> None:
        self._stream = weakref.ref(stream)

    def emit(self, item: Any) -> None:
        stream = self._stream()
        if stream is not None:
            stream.emit(item)

    def end(self, error: BaseException | None) -> None:
        stream = self._stream()
        if stream is not None:
            stream.end(error)


def open_local(
    cell: ActorCell, ask: Callable[[], Awaitable[Any]]
) -> Callable[[ReplyStream], Awaitable[None]]:
    """The opener of a stream from an actor on this node: ask it, then run what it
    answered in a producer bound to the actor and feeding the reader directly."""

    async def open_(stream: ReplyStream) -> None:
        source = as_source(await ask())
        producer = Producer(cell, source, _Reader(stream), stream.window)
        stream.link = producer
        cell.start_stream(producer)

    return open_
