"""A remote ask is one trace across two nodes: a CLIENT span on the asker, a SERVER span
on the answering node with the client span as parent, its context carried in the ASK
frame; untraced frames keep their six fields."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

import swimactors
from swimactors.actors import protocol, tracing
from tests.operate.pair import open_pair

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = otel_sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


def test_ask_frames_with_and_without_a_trace_context() -> None:
    plain = protocol.Ask(1, "echo", 2, None, [0, 1])
    assert protocol.parse(protocol.encode(plain)[4:]) == plain
    traced = protocol.Ask(1, "echo", 2, None, [0, 1], "00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert protocol.parse(protocol.encode(traced)[4:]) == traced
    where, value = protocol.address("echo", 2, None), protocol.value_bytes(1)
    assert protocol.ask_frame(1, where, value) == protocol.encode(plain)
    assert protocol.ask_frame(1, where, value, traced.trace) == protocol.encode(traced)
    too_long = protocol.encode(protocol.Ask(1, "echo", 2, None, [0, 1], "x" * 200))
    with pytest.raises(swimactors.wire.WireError):
        protocol.parse(too_long[4:])


@pytest.mark.network
async def test_a_remote_ask_is_one_trace_across_two_nodes(
    exporter: InMemorySpanExporter,
) -> None:
    async with open_pair() as (_, y):
        echo = await y.wait_for("echo")
        with trio.fail_after(20):
            assert await echo.ask("hello") == "hello"
    spans = {span.name: span for span in exporter.get_finished_spans()}
    client, server = spans[f"ask {echo.path}"], spans[f"receive {echo.path}"]
    assert client.kind.name == "CLIENT" and server.kind.name == "SERVER"
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert client.attributes["swimactors.node"] == "x"
    assert server.attributes["swimactors.node"] == "x"
    assert client.start_time <= server.start_time <= server.end_time <= client.end_time
