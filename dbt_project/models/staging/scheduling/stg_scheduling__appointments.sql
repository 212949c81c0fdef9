-- Clinic appointments, latest version of each: booked, then resent with their outcome. Holds PHI.
-- The SQL is macros/staging/queries/stg_scheduling__appointments.sql: an incremental fact or a daily
-- test runs it narrowed to the day's keys before the dedupe (macros/staging/scoped.sql).
{{ stg_scheduling__appointments_query() }}
