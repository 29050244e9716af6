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
move's trace. Only sampled traces are stored so: the row of an unsampled
move carries nothing, and neither does its Kafka record. :func:`child_span`
is for calls made both inside requests and by background work (Redis): it
joins a sampled trace and never starts one.

Cost: with tracing off, :func:`span` returns one shared do-nothing context
manager and :func:`message_context` returns ``None``; nothing is allocated.
The sampling decision of a root is made here, not by the SDK: an unsampled
root (99 requests in 100 by default) is two random ids made current, with
no SDK span, so that log lines still carry a trace id. Inside an unsampled
trace :func:`span` makes no span either. An actor message carries its
sender's context object itself (:func:`message_context`), so the receiver
enters it without formatting or parsing headers. Check
``span.is_recording()`` before computing costly attributes.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from contextvars import Token
from importlib import metadata
from types import TracebackType
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
)
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
# Probability that a root span is kept, as configured.
_sample_ratio = DEFAULT_SAMPLE_RATIO
_UNSAMPLED: Final = TraceFlags(TraceFlags.DEFAULT)


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
    global _tracer, _provider, _global_provider_set, _sample_ratio

    env = os.environ if environ is None else environ
    endpoint = otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    ratio = _ratio(sample_ratio, env)
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    shutdown_tracing()
    if exporter is None and (disabled or not endpoint):
        return False

    # span() decides whether a root is kept; the SDK sees kept roots only.
    provider = TracerProvider(
        sampler=ParentBased(root=ALWAYS_ON),
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
    _sample_ratio = ratio
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
    span, or a new root; so is it when the carrier names no trace. A root is
    kept with the configured probability. An exception leaving the block is
    recorded on the span and marks it as an error.

    Inside a trace that was not sampled no span is made: the block runs in
    the unsampled parent's context, whose ids still reach the logs.
    """
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN

    if parent is None:
        current = trace.get_current_span().get_span_context()
        if not current.is_valid:
            return _root(tracer, name, attributes, kind, None)
        if not current.trace_flags.sampled:
            return _NO_SPAN

        return tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    if type(parent) is _Carrier:
        context, remote = parent.context, parent.span_context
    else:
        context = _PROPAGATOR.extract(parent)
        remote = trace.get_current_span(context).get_span_context()
        if not remote.is_valid:
            return _root(tracer, name, attributes, kind, Context())

    if not remote.trace_flags.sampled:
        return _Attach(context)

    return tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=attributes
    )


def _root(
    tracer: Tracer,
    name: str,
    attributes: Attributes,
    kind: SpanKind,
    context: Context | None,
) -> AbstractContextManager[Span]:
    """Start a trace, kept with the configured probability."""
    if random.random() < _sample_ratio:
        return tracer.start_as_current_span(
            name, context=context, kind=kind, attributes=attributes
        )

    # Dropped: no SDK span, only ids for the logs and the actors downstream.
    ids = SpanContext(_random_id(128), _random_id(64), False, _UNSAMPLED)

    return _Attach(trace.set_span_in_context(NonRecordingSpan(ids), context))


def _random_id(bits: int) -> int:
    # Zero is not a valid id; it comes up once in 2**64 draws at worst.
    while not (value := random.getrandbits(bits)):
        pass

    return value


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

    return _traceparent(context) if context.is_valid else None


def current_traceparent() -> str | None:
    """
    Return the current span's W3C ``traceparent``, to store beside a write.

    ``None`` when tracing is off, no span is current, or the current trace is
    not sampled: work done later for an unsampled request makes no span.
    """
    if _tracer is None:
        return None

    context = trace.get_current_span().get_span_context()

    return _traceparent(context) if context.trace_flags.sampled else None


def _traceparent(context: SpanContext) -> str:
    return (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )


def get_tracer() -> Tracer:
    """
    Return the tracer :func:`span` uses, or a no-op one when tracing is off.

    Its roots are all kept: :func:`span` makes the sampling decision.
    """
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


def message_context() -> Mapping[str, str] | None:
    """
    Return the current trace context to carry inside an actor message.

    ``None`` when tracing is off or no span is current, so a message built
    on the hot path carries nothing and costs nothing. The carrier holds the
    context itself; read as a mapping it is the W3C ``traceparent`` (and
    ``tracestate``) headers.
    """
    if _tracer is None:
        return None

    context = get_current()
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None

    return _Carrier(context, span_context)


class _Carrier(Mapping[str, str]):
    """The context of a message's sender, formatted only if someone reads it."""

    __slots__ = ("context", "span_context")

    def __init__(self, context: Context, span_context: SpanContext) -> None:
        self.context = context
        self.span_context = span_context

    def __repr__(self) -> str:
        return f"<trace context {_traceparent(self.span_context)}>"

    def __getitem__(self, key: str) -> str:
        if key == "traceparent":
            return _traceparent(self.span_context)
        if key == "tracestate" and self.span_context.trace_state:
            return self.span_context.trace_state.to_header()

        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield "traceparent"
        if self.span_context.trace_state:
            yield "tracestate"

    def __len__(self) -> int:
        return 2 if self.span_context.trace_state else 1


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
