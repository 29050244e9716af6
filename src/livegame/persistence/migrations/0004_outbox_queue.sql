-- The outbox is a queue: every row is inserted, marked once published and
-- deleted minutes later, so dead row versions pile up at the rate of the
-- moves. Vacuum it after a fixed number of dead rows instead of a fraction
-- of the table, so its partial index of unpublished rows stays short.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 20000,
    autovacuum_vacuum_insert_scale_factor = 0.0,
    autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_analyze_scale_factor = 0.02
);
