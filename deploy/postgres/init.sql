-- Runs once, when the data volume is first initialised. The extension backs
-- the runbook's "slow move validation" query over pg_stat_statements.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
