"""OpenTelemetry spans for remote asks, with the trace context carried in the ASK frame.

Off until :func:`enable` (it needs the ``otel`` extra, ``opentelemetry-api``).  Then each
ask to another node is a CLIENT span ``ask PATH`` on the asking node (a child of whatever
span is current there), whose W3C ``traceparent`` travels as the ASK frame's last field;
the answering node opens a SERVER span ``receive PATH`` with that parent and ends it when
the reply is sent, so one trace crosses both nodes.  Off, it costs one check per ask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_TRACEPARENT", "disable", "enable", "enabled", "start_client", "start_server"]

MAX_TRACEPARENT = 128
"""Longest trace context accepted from a frame (a W3C traceparent is 55 characters)."""

_tracer: Any = None
_propagator: Any = None


def enable(tracer_provider: Any = None) -> None:
    """Trace remote asks through ``tracer_provider`` (default: OpenTelemetry's global one)."""
    global _tracer, _propagator
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _tracer = trace.get_tracer("swimactors", tracer_provider=tracer_provider)
    _propagator = TraceContextTextMapPropagator()


def disable() -> None:
    """Stop tracing asks (the default)."""
    global _tracer
    _tracer = None


def enabled() -> bool:
    """Whether asks are traced (:func:`enable` was called)."""
    return _tracer is not None


def start_client(node: str, path: str) -> tuple[Any, str | None]:
    """A started CLIENT span for an ask to ``path`` on ``node``, and its traceparent."""
    from opentelemetry import trace

    span = _tracer.start_span(
        f"ask {path}",
        kind=trace.SpanKind.CLIENT,
        attributes={"swimactors.node": node, "swimactors.path": path},
    )
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier.get("traceparent")


def start_server(node: str, path: str, traceparent: str) -> Any:
    """A started SERVER span for an ask received with ``traceparent`` (None when off)."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    parent = _propagator.extract({"traceparent": traceparent})
    return _tracer.start_span(
        f"receive {path}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={"swimactors.node": node, "swimactors.path": path},
    )
