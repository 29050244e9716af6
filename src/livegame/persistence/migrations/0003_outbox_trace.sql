-- The W3C traceparent of the write that made each outbox row, so the relay
-- can publish the row inside the trace of the move that caused it. Null when
-- the write was not traced.
ALTER TABLE outbox ADD COLUMN trace_context text;
