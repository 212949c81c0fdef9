-- Charge lines of admissions (inpatient) and completed clinic visits (outpatient), latest posting of each.
-- Holds PHI (MRN, service dates). Negative amounts and malformed revenue codes are kept for the quality gate.
-- The SQL is macros/staging/queries/stg_billing__charges.sql: an incremental fact or a daily
-- test runs it narrowed to the day's keys before the dedupe (macros/staging/scoped.sql).
{{ stg_billing__charges_query() }}
