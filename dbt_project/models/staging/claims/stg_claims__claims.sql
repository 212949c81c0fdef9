-- Claims from the clearinghouse, latest version of each. Every delivery carries the status history so far
-- (a JSON array of {status, at, reason_code}); staging keeps it whole and reads its size and last entry.
-- Holds PHI (MRN, encounter). Negative billed amounts are kept for the quality gate.
-- The SQL is macros/staging/queries/stg_claims__claims.sql: an incremental fact or a daily
-- test runs it narrowed to the day's keys before the dedupe (macros/staging/scoped.sql).
{{ stg_claims__claims_query() }}
