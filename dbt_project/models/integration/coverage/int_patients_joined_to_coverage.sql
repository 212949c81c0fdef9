-- Snapshot source for the patients snapshot: one row per patient with the address and the current coverage
-- (plan, payer, payer type of the latest period of the coverage timeline, and whether it is still open).
-- Joined before snapshotting so that one check-strategy snapshot versions a patient when either the address or
-- the coverage changes (snapshots/registration/_registration__snapshots.yml explains the choice).
-- Patients without an MRN (a defect the quality gate reports) are left out: a snapshot cannot track them.
-- Incremental (docs/dbt.md, "Daily builds"; delete+insert on mrn): a run rewrites the patients with a new
-- version, the patients with a coverage period rewritten since the last run, and the patients whose current
-- period was one of those (a period moved to another patient).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='mrn',
        on_schema_change='fail',
    )
}}

with

{% if is_incremental() -%}
changed_patients as (

    -- The patients with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_registration__patients') }}

),

changed_coverage as (

    -- Periods int_coverage_periods_sequenced rewrote since the last run (a filter on a table, no dedupe).
    {{ rows_loaded_since_last_run(ref('int_coverage_periods_sequenced')) }}

),

patients_to_rewrite as (

    select mrn from changed_patients
    where mrn is not null
    union
    select mrn from changed_coverage
    union
    select mrn from {{ this }}
    where current_coverage_id in (select coverage_id from changed_coverage)

),

{% endif -%}
stg_registration__patients as (

    -- Incremental run: only the patients to rewrite, deduplicated after the key filter.
    {{ staging_rows_for_keys('stg_registration__patients', 'select mrn from patients_to_rewrite') }}

),

int_coverage_periods_sequenced as (

    select * from {{ ref('int_coverage_periods_sequenced') }}
    {%- if is_incremental() %}
    where mrn in (select mrn from patients_to_rewrite)
    {%- endif %}

),

patients as (

    select * from stg_registration__patients
    where mrn is not null

),

current_coverage as (

    select
        mrn,
        coverage_id,
        plan_id,
        payer_id,
        payer_type,
        effective_date,
        termination_date,
        is_open,
        _loaded_at
    from int_coverage_periods_sequenced
    where is_latest

),

final as (

    select
        patients.mrn,
        patients.first_name,
        patients.last_name,
        patients.sex,
        patients.birth_date,
        patients.address_line,
        patients.city,
        patients.state_code,
        patients.zip_code,
        patients.home_hospital_id,
        current_coverage.coverage_id as current_coverage_id,
        current_coverage.plan_id as current_plan_id,
        current_coverage.payer_id as current_payer_id,
        current_coverage.payer_type as current_payer_type,
        current_coverage.effective_date as current_coverage_effective_date,
        current_coverage.termination_date as current_coverage_termination_date,
        coalesce(current_coverage.is_open, false) as is_covered,
        patients.updated_at,
        -- The later load of the two versions joined (the incremental watermark).
        case
            when current_coverage._loaded_at > patients._loaded_at then current_coverage._loaded_at
            else patients._loaded_at
        end as _loaded_at
    from patients
    left join current_coverage
        on patients.mrn = current_coverage.mrn

)

select * from final
