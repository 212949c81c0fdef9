-- Registered patients, latest demographics of each (incremental: a move or correction resends the patient).
-- Holds PHI (names, address, phone, e-mail, SSN, birth date): it stays in the PHI zone.
-- The SQL is macros/staging/queries/stg_registration__patients.sql: an incremental fact or a daily
-- test runs it narrowed to the day's keys before the dedupe (macros/staging/scoped.sql).
{{ stg_registration__patients_query() }}
