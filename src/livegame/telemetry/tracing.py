"""
OpenTelemetry traces: provider setup, spans, and W3C context propagation.

Tracing is on when an exporter is configured: OTLP over HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (a base URL such as
``http://otel-collector:4318``; spans go to ``<base>/v1/traces`` through a
batching processor), or an exporter handed in by a test. Root spans are
sampled with probability ``OTEL_TRACES_SAMPLER_ARG`` (default 0.01); a span
with a parent follows its parent's decision, so one trace is kept or dropped
whole across nodes and actors. ``OTEL_SDK_DISABLED=true`` turns tracing off.

Span names are ``<component>.<step>``, lower case, with no ids in them:
``http.request``, ``ws.connection``, ``ws.message``, ``node.forward``,
``game.create``, ``game.move``, ``game.activate``, ``actor.restart``,
``db.append_batch``, ``db.load_game``, ``kafka.publish``, ``redis.claim``,
``redis.lookup``. Ids and other details are attributes (``game.id``,
``game.ply``, ``http.route``, ``http.response.status_code``).

Work that outlives the request that caused it carries the request's
``traceparent`` with it: the journal stores :func:`current_traceparent` in
each outbox row, and the relay publishes the row in a ``kafka.publish`` span
made by :func:`start_span` under that parent, so the publish joins the
move's trace. :func:`child_span` is for calls made both inside requests and
by background work (Redis): it joins a sampled trace and never starts one.

Cost: with tracing off, :func:`span` returns one shared do-nothing context
manager and :func:`message_context` returns ``None``; nothing is allocated.
Inside an unsampled trace :func:`span` makes no span either; entering an
unsampled trace from a carrier only parses it. Only root spans (one per
request at the edges) pay for a sampling decision. Check
``span.is_recording()`` before computing costly attributes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from contextvars import Token
from importlib import metadata
from types import TracebackType
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)
from opentelemetry.util.types import Attributes

SERVICE_NAME: Final = "live-game-api"
DEFAULT_SAMPLE_RATIO: Final = 0.01

# W3C trace context only (traceparent, tracestate), whatever OTEL_PROPAGATORS
# says: nodes and actor messages must agree on one format.
_PROPAGATOR: Final = TraceContextTextMapPropagator()

# None while tracing is off; the hot path tests this and nothing else.
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_global_provider_set = False


class _NoSpan:
    """A span context manager that does nothing, shared by every caller."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_NO_SPAN: Final = _NoSpan()


class _Attach:
    """Make a context current for a block, without making a span."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        self._token = attach(self._context)

        return trace.get_current_span(self._context)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            detach(self._token)


def configure_tracing(
    *,
    node_id: str = "",
    service: str = SERVICE_NAME,
    sample_ratio: float | None = None,
    otlp_endpoint: str | None = None,
    exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """
    Set up the tracer provider for this process and return whether it traces.

    Arguments win over the environment; calling again replaces the previous
    setup (tests do), shutting its provider down.

    Args:
        node_id: written as the ``service.instance.id`` resource attribute.
        service: the ``service.name`` resource attribute.
        sample_ratio: probability of keeping a root span, 0 to 1; defaults
            to ``OTEL_TRACES_SAMPLER_ARG``, else 0.01.
        otlp_endpoint: OTLP/HTTP base URL; defaults to
            ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        exporter: an extra exporter fed synchronously, for tests
            (``InMemorySpanExporter``).
        environ: the environment to read; :data:`os.environ` by default.

    Raises:
        ValueError: the sample ratio is not a number between 0 and 1.
    """
    global _tracer, _provider, _global_provider_set

    env = os.environ if environ is None else environ
    endpoint = otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    ratio = _ratio(sample_ratio, env)
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    shutdown_tracing()
    if exporter is None and (disabled or not endpoint):
        return False

    provider = TracerProvider(
        sampler=ParentBased(root=TraceIdRatioBased(ratio)),
        resource=Resource.create(
            {
                "service.name": service,
                "service.instance.id": node_id,
                "service.version": _version(),
            }
        ),
    )
    if endpoint and not disabled:
        otlp = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(otlp))

    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))

    # The API allows one global provider per process; this module's helpers
    # always use the latest one, the global is only for third-party code.
    if not _global_provider_set:
        trace.set_tracer_provider(provider)
        _global_provider_set = True

    _provider = provider
    _tracer = provider.get_tracer("livegame")

    return True


def shutdown_tracing() -> None:
    """Flush pending spans and turn tracing off."""
    global _tracer, _provider

    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    """Return whether spans are being created."""
    return _tracer is not None


def span(
    name: str,
    attributes: Attributes = None,
    *,
    parent: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> AbstractContextManager[Span]:
    """
    Return a context manager running its block in a new current span.

    ``parent`` is a carrier from :func:`inject` or :func:`message_context`
    (an incoming request's headers, a forwarded call, an actor message); the
    span joins that trace. Without it the span is a child of the current
    span, or a new root. An exception leaving the block is recorded on the
    span and marks it as an error.

    Inside a trace that was not sampled no span is made: the block runs in
    the unsampled parent's context, whose ids still reach the logs.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN

    if parent is None:
        current = trace.get_current_span().get_span_context()
        if current.is_valid and not current.trace_flags.sampled:
            return _NO_SPAN

        return tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    context = _PROPAGATOR.extract(parent)
    remote = trace.get_current_span(context).get_span_context()
    if remote.is_valid and not remote.trace_flags.sampled:
        return _Attach(context)

    return tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=attributes
    )


def child_span(
    name: str,
    attributes: Attributes = None,
    *,
    kind: SpanKind = SpanKind.CLIENT,
) -> AbstractContextManager[Span]:
    """
    Return a context manager running its block in a child of the current span.

    Unlike :func:`span` it never starts a trace: outside a sampled span it
    does nothing. For calls to other services (``redis.claim``) made both
    inside requests and by background work, which must not open traces of
    their own.
    """
    if _tracer is None:
        return _NO_SPAN

    current = trace.get_current_span().get_span_context()
    if not current.trace_flags.sampled:
        return _NO_SPAN

    return _tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def start_span(
    name: str,
    attributes: Attributes = None,
    *,
    traceparent: str,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Span:
    """
    Start a span in the trace ``traceparent`` names, without making it current.

    For work that ends in a callback rather than a block (a Kafka send ends
    at the broker's ack): the caller ends the span. Inside an unsampled
    trace, or with tracing off, the span records nothing and ending it costs
    nothing; :func:`traceparent_of` still names the parent's trace.
    """
    context = _PROPAGATOR.extract({"traceparent": traceparent})
    parent = trace.get_current_span(context)
    tracer = _tracer
    if tracer is None or not parent.get_span_context().trace_flags.sampled:
        return parent

    return tracer.start_span(name, context=context, kind=kind, attributes=attributes)


def traceparent_of(span: Span) -> str | None:
    """Return the W3C ``traceparent`` naming ``span``, or None if it has no ids."""
    context = span.get_span_context()
    if not context.is_valid:
        return None

    return (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )


def current_traceparent() -> str | None:
    """
    Return the current span's W3C ``traceparent``, to store beside a write.

    ``None`` when tracing is off or no span is current, as for
    :func:`message_context`.
    """
    if _tracer is None:
        return None

    return traceparent_of(trace.get_current_span())


def get_tracer() -> Tracer:
    """Return the tracer :func:`span` uses, or a no-op one when tracing is off."""
    return _tracer if _tracer is not None else trace.NoOpTracer()


def inject(
    carrier: MutableMapping[str, str] | None = None, context: Context | None = None
) -> MutableMapping[str, str]:
    """Write the current (or given) trace context into ``carrier`` and return it."""
    out: MutableMapping[str, str] = {} if carrier is None else carrier
    if _tracer is not None:
        _PROPAGATOR.inject(out, context=context)

    return out


def extract(carrier: Mapping[str, str]) -> Context:
    """Return the context described by a carrier's ``traceparent``."""
    return _PROPAGATOR.extract(carrier)


def message_context() -> dict[str, str] | None:
    """
    Return the current trace context to carry inside an actor message.

    ``None`` when tracing is off or no span is current, so a message built
    on the hot path carries nothing and costs nothing.
    """
    if _tracer is None:
        return None

    if not trace.get_current_span().get_span_context().is_valid:
        return None

    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)

    return carrier


def current_trace_id() -> str | None:
    """Return the current trace id as 32 hex digits, or ``None``."""
    context = trace.get_current_span().get_span_context()

    return format(context.trace_id, "032x") if context.is_valid else None


def _ratio(explicit: float | None, env: Mapping[str, str]) -> float:
    ratio = DEFAULT_SAMPLE_RATIO if explicit is None else explicit
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if explicit is None and raw:
        try:
            ratio = float(raw)
        except ValueError:
            raise ValueError(
                f"OTEL_TRACES_SAMPLER_ARG {raw!r} is not a number"
            ) from None

    # Written so that NaN fails too.
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"trace sample ratio {ratio} is not between 0 and 1")

    return ratio


def _version() -> str:
    try:
        return metadata.version("live-game-api")
    except metadata.PackageNotFoundError:
        return "unknown"
