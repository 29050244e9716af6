"""Spans join one trace across calls, nodes and actor messages."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from livegame.telemetry import tracing

# The sampled bit of traceparent's flags; the SDK may set others (random id).
SAMPLED = 0x01
SAMPLED_PARENT = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
}
UNSAMPLED_PARENT = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert tracing.configure_tracing(exporter=spans, sample_ratio=1.0, environ={})
    yield spans

    tracing.shutdown_tracing()


@pytest.fixture
def unsampled() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.configure_tracing(exporter=spans, sample_ratio=0.0, environ={})
    yield spans

    tracing.shutdown_tracing()


@pytest.fixture
def disabled() -> Iterator[None]:
    assert not tracing.configure_tracing(environ={})
    yield

    tracing.shutdown_tracing()


def test_nested_spans_share_one_trace(exporter: InMemorySpanExporter) -> None:
    with tracing.span("http.request", kind=SpanKind.SERVER):
        with (
            tracing.span("game.move", {"game.ply": 3}),
            tracing.span("db.append_batch"),
        ):
            pass
        with tracing.span("kafka.publish"):
            pass

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {
        "http.request",
        "game.move",
        "db.append_batch",
        "kafka.publish",
    }
    assert len({span.context.trace_id for span in spans.values()}) == 1
    root = spans["http.request"]
    assert root.parent is None
    assert spans["game.move"].parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert (
        spans["db.append_batch"].parent.span_id  # type: ignore[union-attr]
        == spans["game.move"].context.span_id
    )
    assert spans["game.move"].attributes == {"game.ply": 3}


def test_spans_carry_the_node_as_resource() -> None:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(
        exporter=exporter, node_id="api2", sample_ratio=1.0, environ={}
    )
    try:
        with tracing.span("http.request"):
            pass
    finally:
        tracing.shutdown_tracing()

    (span,) = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "live-game-api"
    assert span.resource.attributes["service.instance.id"] == "api2"


def test_an_exception_marks_the_span_as_failed(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError), tracing.span("game.move"):
        raise KeyError("g1")

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_inject_and_extract_round_trip(exporter: InMemorySpanExporter) -> None:
    with tracing.span("node.forward") as outer:
        carrier = dict(tracing.inject())

    context = trace.get_current_span(tracing.extract(carrier)).get_span_context()
    sent = outer.get_span_context()
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{sent.trace_id:032x}",
        f"{sent.span_id:016x}",
    )
    assert int(flags, 16) & SAMPLED
    assert (context.trace_id, context.span_id) == (sent.trace_id, sent.span_id)
    assert context.is_remote


def test_a_span_with_a_carrier_continues_the_senders_trace(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("ws.message"):
        message_trace = tracing.message_context()

    # As a game actor does with the context carried by a message.
    assert message_trace is not None
    with tracing.span("game.move", parent=message_trace):
        pass

    sender, receiver = exporter.get_finished_spans()
    assert receiver.context.trace_id == sender.context.trace_id
    assert receiver.parent.span_id == sender.context.span_id  # type: ignore[union-attr]


def test_message_context_is_none_outside_any_span(
    exporter: InMemorySpanExporter,
) -> None:
    assert tracing.message_context() is None


def test_ratio_zero_exports_nothing_but_keeps_ids(
    unsampled: InMemorySpanExporter,
) -> None:
    with tracing.span("http.request") as root:
        with tracing.span("game.move") as child:
            current = trace.get_current_span().get_span_context()
        carrier = tracing.message_context()

    assert unsampled.get_finished_spans() == ()
    assert root.get_span_context().is_valid
    assert not root.is_recording()
    assert not child.is_recording()
    # Inside an unsampled trace no child is made: the logs keep the root's ids.
    assert current.span_id == root.get_span_context().span_id
    assert carrier is not None
    assert not int(carrier["traceparent"].rsplit("-", 1)[1], 16) & SAMPLED


def test_the_sample_ratio_is_respected(unsampled: InMemorySpanExporter) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, sample_ratio=0.25, environ={})
    # Trace ids come from `random`: seeded, the count is the same every run.
    state = random.getstate()
    random.seed(20251202)
    try:
        for _ in range(2000):
            with tracing.span("http.request"):
                pass
    finally:
        random.setstate(state)

    kept = len(exporter.get_finished_spans())
    assert 400 <= kept <= 600


def test_a_sampled_parent_is_followed_whatever_the_ratio(
    unsampled: InMemorySpanExporter,
) -> None:
    root = tracing.span("http.request", parent=SAMPLED_PARENT, kind=SpanKind.SERVER)
    with root, tracing.span("game.move"):
        pass

    spans = unsampled.get_finished_spans()
    assert [span.name for span in spans] == ["game.move", "http.request"]
    assert {f"{span.context.trace_id:032x}" for span in spans} == {
        "0af7651916cd43dd8448eb211c80319c"
    }


def test_an_unsampled_parent_is_followed_whatever_the_ratio(
    exporter: InMemorySpanExporter,
) -> None:
    root = tracing.span("http.request", parent=UNSAMPLED_PARENT)
    with root as span, tracing.span("game.move"):
        trace_id = tracing.current_trace_id()

    assert exporter.get_finished_spans() == ()
    assert not span.is_recording()
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert tracing.current_trace_id() is None


def test_a_carrier_without_traceparent_starts_a_new_trace(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("http.request", parent={"content-type": "application/json"}):
        pass

    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_disabled_tracing_hands_out_one_shared_no_op(disabled: None) -> None:
    first = tracing.span("game.move")
    second = tracing.span("game.move", parent=SAMPLED_PARENT)

    with first as span:
        assert not span.is_recording()
        assert tracing.message_context() is None
        assert tracing.inject() == {}

    assert first is second
    assert not tracing.tracing_enabled()


def test_current_traceparent_names_the_current_span(
    exporter: InMemorySpanExporter,
) -> None:
    assert tracing.current_traceparent() is None
    with tracing.span("db.append"):
        written = tracing.current_traceparent()
        carried = tracing.message_context()

    assert carried is not None
    assert written == carried["traceparent"]


def test_current_traceparent_is_none_in_an_unsampled_trace(
    unsampled: InMemorySpanExporter,
) -> None:
    with tracing.span("db.append"):
        assert tracing.current_trace_id() is not None
        assert tracing.current_traceparent() is None


def test_current_traceparent_is_none_when_tracing_is_off(disabled: None) -> None:
    with tracing.span("db.append"):
        assert tracing.current_traceparent() is None


def test_a_started_span_joins_the_trace_it_is_given(
    exporter: InMemorySpanExporter,
) -> None:
    started = tracing.start_span(
        "kafka.publish",
        {"game.id": "g1"},
        traceparent=SAMPLED_PARENT["traceparent"],
        kind=SpanKind.PRODUCER,
    )
    # Not current: work in between is not its child.
    assert tracing.current_trace_id() is None
    assert exporter.get_finished_spans() == ()
    started.end()

    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.kind is SpanKind.PRODUCER
    assert tracing.traceparent_of(started) == (
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}"
        f"-{span.context.trace_flags:02x}"
    )


@pytest.mark.parametrize("traced", [True, False])
def test_a_span_started_in_an_unsampled_trace_or_untraced_names_the_parent(
    traced: bool,
) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(
        exporter=exporter if traced else None, sample_ratio=1.0, environ={}
    )
    try:
        parent = (UNSAMPLED_PARENT if traced else SAMPLED_PARENT)["traceparent"]
        started = tracing.start_span("kafka.publish", traceparent=parent)
        started.end()
    finally:
        tracing.shutdown_tracing()

    assert not started.is_recording()
    assert tracing.traceparent_of(started) == parent
    assert exporter.get_finished_spans() == ()


def test_a_message_carries_the_senders_context_as_w3c_headers(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("ws.message") as sender:
        carried = tracing.message_context()

    assert carried is not None
    assert dict(carried) == {"traceparent": tracing.traceparent_of(sender)}
    assert len(carried) == 1
    assert "tracestate" not in carried
    assert carried == dict(carried)


def test_a_carrier_naming_an_invalid_trace_starts_a_new_one(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("http.request", parent={"traceparent": "00-zz-00-01"}):
        pass

    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_a_child_span_never_starts_a_trace(exporter: InMemorySpanExporter) -> None:
    with tracing.child_span("redis.claim") as alone:
        assert not alone.is_recording()
    with tracing.span("http.request"), tracing.child_span("redis.claim"):
        pass

    redis, root = exporter.get_finished_spans()
    assert redis.name == "redis.claim"
    assert redis.kind is SpanKind.CLIENT
    assert redis.parent is not None
    assert redis.parent.span_id == root.context.span_id


def test_a_child_span_inside_an_unsampled_trace_is_no_span(
    unsampled: InMemorySpanExporter,
) -> None:
    with tracing.span("http.request"), tracing.child_span("redis.claim") as span:
        assert not span.is_recording()

    assert unsampled.get_finished_spans() == ()


def test_an_otlp_endpoint_in_the_environment_turns_tracing_on() -> None:
    # Nothing listens there and no span is made, so nothing is sent.
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    try:
        assert tracing.configure_tracing(environ=environ)
        assert tracing.tracing_enabled()
    finally:
        tracing.shutdown_tracing()


def test_otel_sdk_disabled_wins_over_an_endpoint() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_SDK_DISABLED": "true",
    }

    assert not tracing.configure_tracing(environ=environ)


@pytest.mark.parametrize(
    ("ratio", "environ"),
    [
        (None, {"OTEL_TRACES_SAMPLER_ARG": "often"}),
        (None, {"OTEL_TRACES_SAMPLER_ARG": "1.5"}),
        (-0.1, {}),
        (float("nan"), {}),
    ],
)
def test_a_bad_sample_ratio_is_refused(
    ratio: float | None, environ: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match=r"ratio|SAMPLER_ARG"):
        tracing.configure_tracing(sample_ratio=ratio, environ=environ)
