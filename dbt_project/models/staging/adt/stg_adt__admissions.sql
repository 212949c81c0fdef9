-- Inpatient admissions, latest version of each: sent at admission (no discharge yet), sent again at discharge.
-- Holds PHI. A discharge before the admission is kept as sent: the quality gate reports it.
-- The SQL is macros/staging/queries/stg_adt__admissions.sql: an incremental fact or a daily
-- test runs it narrowed to the day's keys before the dedupe (macros/staging/scoped.sql).
{{ stg_adt__admissions_query() }}
