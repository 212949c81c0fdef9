-- Coverage periods of patients, latest version of each (a plan change terminates one row and opens another;
-- the termination arrives as a new version of the old row). Holds PHI (MRN, member id).
-- The SQL is macros/staging/queries/stg_payers__coverage.sql: an incremental fact or a daily
-- test runs it narrowed to the day's keys before the dedupe (macros/staging/scoped.sql).
{{ stg_payers__coverage_query() }}
