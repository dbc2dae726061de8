"""The asyncio front: swimactors from an asyncio program (FastAPI, Starlette, aiohttp).

``async with aio.open_node(...) as node:`` runs a cluster member on a membership thread of
its own (:mod:`swimactors.membership.threaded`), so a blocked asyncio loop cannot delay
its probes and acks.  ``async with aio.open_system(...) as system:`` runs a whole actor
system (actors, membership, registry) on a runtime thread: actor bodies run on trio there,
and asyncio tasks spawn, find, ask and tell through :class:`AsyncSystem` and
:class:`AsyncRef`.  Every call returns an awaitable that the other thread settles; nothing
here blocks the asyncio loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar, Unpack

import outcome

from . import wire
from .actors import protocol, tracing
from .actors.aio_peers import AsyncPeers
from .actors.errors import UndecodableReply
from .actors.from_thread import ForeignRef, begin_ask, begin_tell
from .actors.message import ref_resolver
from .actors.proxy import proxy
from .actors.ref import DEFAULT_ASK_TIMEOUT, ActorRef
from .actors.runtime import ActorSource
from .actors.transport import ActorTransport, RemoteTarget, TcpNetwork
from .cluster.system import System
from .cluster.system import open_system as _open_system
from .loop_thread import DEFAULT_START_TIMEOUT, Begin, Crossing, LoopThread, ThreadClosed
from .membership.delegate import Delegate
from .membership.events import DEFAULT_EVENT_BUFFER, EventsDropped
from .membership.lean import node_thread
from .membership.threaded import NodeClosed, NodeOptions, NodeThread, OnNodeThread
from .membership.types import Address, Member, MemberDown, MemberEvent, MemberLeft

__all__ = ["AsyncEvents", "AsyncNode", "AsyncRef", "AsyncSystem", "open_node", "open_system"]

R = TypeVar("R")
T = TypeVar("T")


class _Bridge(Generic[R]):
    """The asyncio side of one loop thread: calls go over to it, their outcomes come back
    onto this asyncio loop (one wake-up of the loop per batch, the loop watching the
    crossing's pipe), and an asyncio task that is cancelled while it waits cancels the
    call on the other side.  :meth:`close` once the loop thread has ended."""

    __slots__ = ("_back", "loop", "thread")

    def __init__(self, thread: LoopThread[R], loop: asyncio.AbstractEventLoop) -> None:
        self.thread = thread
        self.loop = loop
        self._back = Crossing()
        loop.add_reader(self._back.fileno, self._back.run)

    def close(self) -> None:
        """On the asyncio loop, once no outcome can come any more: settle what came."""
        self.loop.remove_reader(self._back.fileno)
        self._back.close()

    async def start(self, begin: Begin[R, T]) -> T:
        """Await what ``begin`` (on the loop thread) starts and settles."""
        future: asyncio.Future[T] = self.loop.create_future()
        call = self.thread.begin(begin, functools.partial(self._back.send, _settle, future))
        try:
            return await future
        except asyncio.CancelledError:
            call.cancel()
            raise

    async def run_sync(self, fn: Callable[[R], T]) -> T:
        """``fn(resource)``'s result, from the loop thread."""
        return await self.start(lambda resource, done: done(outcome.capture(fn, resource)))

    async def run_async(self, fn: Callable[[R], Awaitable[T]]) -> T:
        """``await fn(resource)``'s result, run as a task on the loop thread."""
        thread = self.thread
        return await self.start(
            lambda resource, done: thread.spawn(functools.partial(fn, resource), done)
        )


def _settle(future: asyncio.Future[T], result: outcome.Outcome[T]) -> None:
    if not future.cancelled():  # (an outcome is read, not unwrapped: it may be shared)
        if isinstance(result, outcome.Value):
            future.set_result(result.value)
        elif isinstance(result, outcome.Error):
            future.set_exception(result.error)


class AsyncEvents:
    """Membership events for an asyncio reader: ``async for event in node.events()``.

    Ends when the node stops or :meth:`close` is called; use ``with`` to unsubscribe
    deterministically.  Same bounded buffer and :class:`EventsDropped` as the trio front.
    """

    def __init__(self, thread: NodeThread, buffer: int, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._events = thread.subscribe(buffer, self._on_ready)

    def _on_ready(self) -> None:  # on the membership thread
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def dropped(self) -> int:
        """Events this subscription lost because it fell more than its buffer behind."""
        return self._events.dropped

    def close(self) -> None:
        """Unsubscribe: the iteration ends."""
        self._events.close()

    def __aiter__(self) -> AsyncEvents:
        return self

    async def __anext__(self) -> MemberEvent | EventsDropped:
        while True:
            self._wakeup.clear()
            closed = self._events.closed
            item = self._events.poll()
            if item is not None:
                return item
            if closed:
                raise StopAsyncIteration
            await self._wakeup.wait()

    def __enter__(self) -> AsyncEvents:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncNode(OnNodeThread):
    """A running member on its own thread, for asyncio code; get one from
    :func:`open_node`.  Reads are snapshots taken on the membership thread."""

    def __init__(self, thread: NodeThread, loop: asyncio.AbstractEventLoop) -> None:
        self._thread = thread
        self._loop = loop
        self._bridge = _Bridge(thread, loop)

    @property
    def running(self) -> bool:
        """Whether the membership thread is still running the node."""
        return self._thread.running

    async def members(self) -> list[Member]:
        """Every member this node knows, itself included, in any status."""
        return await self._bridge.run_sync(lambda node: node.members())

    async def member(self, name: str) -> Member | None:
        """The member called ``name`` as this node sees it, or None."""
        return await self._bridge.run_sync(lambda node: node.member(name))

    async def local_member(self) -> Member:
        """This node as a member."""
        return await self._bridge.run_sync(lambda node: node.local_member)

    async def counters(self) -> collections.Counter[str]:
        """The node's counters (packets, drops by reason, ...)."""
        return await self._bridge.run_sync(lambda node: node.counters)

    def events(self, buffer: int = DEFAULT_EVENT_BUFFER) -> AsyncEvents:
        """Subscribe to membership events from now on."""
        return AsyncEvents(self._thread, buffer, self._loop)

    async def set_meta(self, meta: bytes) -> None:
        """Replace this node's metadata and announce it (ValueError if too large)."""
        await self._bridge.run_async(lambda node: node.set_meta(meta))

    async def broadcast(self, channel: str, payload: bytes, key: str | None = None) -> None:
        """Spread ``payload`` to every member by gossip on ``channel``."""
        await self._bridge.run_sync(lambda node: node.broadcast(channel, payload, key))

    async def register_delegate(self, channel: str, delegate: Delegate) -> None:
        """Let a layer ride on this node's gossip; its hooks run on the membership thread."""
        await self._bridge.run_sync(lambda node: node.register_delegate(channel, delegate))

    async def leave(self, timeout: float | None = None) -> bool:
        """Leave the cluster gracefully and stop the node; True once peers were told."""
        try:
            told = await self._bridge.run_async(lambda node: node.leave(timeout))
        except NodeClosed:
            return False
        await asyncio.to_thread(self._thread.stop)
        return told


@asynccontextmanager
async def open_node(
    *, name: str, start_timeout: float = DEFAULT_START_TIMEOUT, **options: Unpack[NodeOptions]
) -> AsyncIterator[AsyncNode]:
    """Run a cluster member on its own thread for the life of the block.

    Takes :func:`swimactors.membership.open_node`'s arguments (``bind``, ``seeds``,
    ``config``, ``meta``, ...); raises its start-up errors.  Leaving the block leaves the
    cluster and joins the thread (without blocking the loop).
    """
    thread = node_thread(name, options)
    try:
        await asyncio.to_thread(thread.start, start_timeout)
    except asyncio.CancelledError:  # the start goes on in the worker: stop it there
        _stop_in_background(thread)
        raise
    node = AsyncNode(thread, asyncio.get_running_loop())
    try:
        yield node
    finally:
        try:
            await asyncio.to_thread(thread.stop)
        finally:  # (if cancelled meanwhile, the loop must still stop watching the pipe)
            node._bridge.close()
    if thread.error is not None:
        raise NodeClosed(f"the membership thread of {name} failed") from thread.error


# -- the actor system ------------------------------------------------------------------------


class AsyncRef(ForeignRef):
    """A ref to an actor (local or on another node) for asyncio tasks.

    ``await ref.ask(msg, timeout=...)`` and ``await ref.tell(msg)`` raise the same errors
    as the trio ref (:class:`~swimactors.AskTimeout`, :class:`~swimactors.ActorStopped`,
    :class:`~swimactors.ActorFailed`, ...).  To a local actor they run on the runtime
    thread; to one on another node, on the asyncio loop's own connection to that node
    when the system has one (:mod:`swimactors.actors.aio_peers`).  Put :attr:`ref` (the
    trio ref) in messages.  Equal refs name the same actor.
    """

    __slots__ = ("_address", "_bridge", "_peers")

    def __init__(
        self, ref: ActorRef, bridge: _Bridge[Any], peers: AsyncPeers | None = None
    ) -> None:
        super().__init__(ref)
        self._bridge = bridge
        self._peers = peers if isinstance(ref.target, RemoteTarget) else None
        self._address = protocol.address(ref.path, ref.uid, None) if self._peers else b""

    async def ask(self, msg: Any, timeout: float | None = DEFAULT_ASK_TIMEOUT) -> Any:
        """Send ``msg`` and return the actor's answer (``timeout`` as for the trio ref).

        Cancelling the awaiting task cancels the ask (a reply that still comes is dropped).
        """
        peers = self._peers
        if peers is not None:
            node = self.ref.node
            link = peers.links.get(node) or await peers.link(node)
            if link is not None:
                return await link.ask(self._address, msg, self.ref, timeout)
        return await self._bridge.start(begin_ask(self._bridge.thread, self.ref, msg, timeout))

    async def tell(self, msg: Any) -> None:
        """Deliver ``msg`` (waits while the actor's mailbox is full)."""
        peers = self._peers
        if peers is not None:
            node = self.ref.node
            link = peers.links.get(node) or await peers.link(node)
            if link is not None and await link.tell(self._address, msg):
                return
        await self._bridge.start(begin_tell(self._bridge.thread, self.ref, msg))


class AsyncSystem:
    """An actor system on its runtime thread, for asyncio code; get one from
    :func:`open_system`.  Actor bodies run on trio on that thread."""

    def __init__(self, runtime: LoopThread[System], loop: asyncio.AbstractEventLoop) -> None:
        self._bridge = _Bridge(runtime, loop)
        self._name = ""
        self._peers: AsyncPeers | None = None

    @property
    def name(self) -> str:
        """This node's name."""
        return self._name

    async def spawn(self, actor: ActorSource, name: str | None = None, **options: Any) -> AsyncRef:
        """Start a top-level actor (``System.spawn``'s arguments: ``public=True`` names it
        cluster-wide) and return its ref."""
        ref = await self.run(lambda system: system.spawn(actor, name, **options))
        return self._wrap(ref)

    async def find(self, name: str) -> AsyncRef | None:
        """The ref of the actor holding ``name`` anywhere in the cluster, or None."""
        ref = await self.run(lambda system: system.find(name))
        return None if ref is None else self._wrap(ref)

    async def wait_for(self, name: str, timeout: float | None = None) -> AsyncRef:
        """The ref for ``name`` once someone holds it; TimeoutError after ``timeout`` s."""
        return self._wrap(await self.run(lambda system: system.wait_for(name, timeout)))

    async def stop(self, ref: AsyncRef) -> None:
        """Stop a local actor and wait until it has."""
        await self.run(lambda system: system.stop(ref.ref))

    async def run(self, fn: Callable[[System], Awaitable[T]]) -> T:
        """``await fn(system)`` on the runtime thread: any trio-side call of the system
        (cancelled there if the awaiting task is cancelled)."""
        return await self._bridge.run_async(fn)

    def proxy(self, ref: AsyncRef, cls: type[T], timeout: float | None = DEFAULT_ASK_TIMEOUT) -> T:
        """``cls``'s methods (an ``@as_actor`` class) as asks to ``ref``, awaited from
        asyncio: the same proxy as ``System.proxy`` gives trio code."""
        return proxy(ref, cls, timeout)

    def ref(self, ref: ActorRef) -> AsyncRef:
        """The asyncio handle of a trio ref (one that came back in an answer)."""
        return self._wrap(ref)

    def _wrap(self, ref: ActorRef) -> AsyncRef:
        return AsyncRef(ref, self._bridge, self._peers)


@asynccontextmanager
async def open_system(
    name: str | None = None,
    bind: str | None = None,
    seeds: Sequence[str] = (),
    *,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    **options: Any,
) -> AsyncIterator[AsyncSystem]:
    """Run :func:`swimactors.open_system` (same arguments) on a runtime thread for the
    life of the block.

    Raises its start-up errors.  Leaving the block stops every actor, leaves the cluster
    and joins the thread (without blocking the loop); if the system failed (an escalated
    error), :class:`~swimactors.SystemFailed` is raised here.
    """

    def open_on_runtime() -> contextlib.AbstractAsyncContextManager[System]:
        return _open_system(name, bind, seeds, **options)

    runtime: LoopThread[System] = LoopThread(f"swimactors-runtime-{name}", open_on_runtime)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.to_thread(runtime.start, start_timeout)
    except asyncio.CancelledError:
        _stop_in_background(runtime)
        raise
    system = AsyncSystem(runtime, loop)
    try:
        system._name = await system.run(_name_of)
        transport = await system._bridge.run_sync(_direct_transport)
        if transport is not None:
            peers = system._peers = direct_peers(system._bridge, transport)
            follow = functools.partial(_follow_departures, system._bridge, peers)
            runtime.run_async(follow, _ignore)
        yield system
    finally:
        if system._peers is not None:
            system._peers.close()
        try:
            await asyncio.to_thread(runtime.stop)
        finally:  # (if cancelled meanwhile, the loop must still stop watching the pipe)
            system._bridge.close()
    if runtime.error is not None:
        raise runtime.error


async def _name_of(system: System) -> str:
    return system.name


def _direct_transport(system: System) -> ActorTransport | None:
    """The system's actor transport when asyncio may reach other nodes on connections of
    its own: plain TCP, no cluster key or TLS (their handshakes run on trio), no
    split-brain gate on asks, no tracing (spans are the runtime's)."""
    cluster = system.cluster
    if cluster is None:
        return None
    transport = cluster.transport
    if (
        type(transport) is not ActorTransport
        or transport.keyring is not None
        or transport.tls is not None
        or not isinstance(transport.network, TcpNetwork)
        or tracing.enabled()
    ):
        return None
    return transport


def direct_peers(bridge: _Bridge[Any], transport: ActorTransport) -> AsyncPeers:
    """The asyncio connections of a system whose runtime ``bridge`` reaches, speaking
    for ``transport``'s node (where a node listens is asked of that thread)."""

    def locate(node: str) -> Awaitable[Address | None]:
        return bridge.run_sync(lambda _: transport.host.actor_address(node))

    def decode(node: str, value: Any, future: asyncio.Future[Any]) -> None:
        def on_runtime(_: object) -> Any:
            resolving = ref_resolver.set(transport.host.resolve)
            try:
                return protocol.decode_value(value)
            except wire.WireError as exc:
                raise UndecodableReply(f"from {node}: {exc}") from None
            finally:
                ref_resolver.reset(resolving)

        try:
            bridge.thread.run_sync(
                on_runtime, functools.partial(bridge._back.send, _settle, future)
            )
        except ThreadClosed as exc:
            future.set_exception(exc)

    return AsyncPeers(
        bridge.loop,
        transport.host.name,
        transport.incarnation,
        transport.config,
        locate,
        decode,
    )


async def _follow_departures(bridge: _Bridge[System], peers: AsyncPeers, system: System) -> None:
    """On the runtime thread: a node that goes DOWN or LEFT fails its asks from asyncio
    at once, as it does the runtime's own."""
    assert system.cluster is not None
    with system.cluster.node.events() as events:
        async for event in events:
            if isinstance(event, MemberDown | MemberLeft):
                reason = "down" if isinstance(event, MemberDown) else "left"
                bridge._back.send(peers.node_down, event.member.name, reason)


def _ignore(result: outcome.Outcome[Any]) -> None:
    pass


def _stop_in_background(thread: LoopThread[Any]) -> None:
    threading.Thread(target=thread.stop, daemon=True).start()
