-- Every encounter of the network in one shape: inpatient admissions (ADT) and clinic visits (scheduling).
-- Claims and charges reference an encounter by `encounter_id` with its `encounter_type`, so this is the table
-- both join to. Rows without a key (a source defect the quality gate reports) cannot be an encounter and are left
-- out here; staging keeps them.
-- Incremental (docs/dbt.md, "Daily builds"): an encounter's row depends on its own latest version (and its
-- department's hospital), so a run reads the admissions and appointments with a raw row loaded since the last
-- run and replaces them (delete+insert on encounter_id: admission and appointment ids never collide).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='encounter_id',
        on_schema_change='fail',
    )
}}

with

stg_adt__admissions as (

    -- Incremental run: only the records with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_adt__admissions') }}

),

stg_scheduling__appointments as (

    {{ staging_rows_since_last_run('stg_scheduling__appointments') }}

),

stg_facilities__departments as (

    select * from {{ ref('stg_facilities__departments') }}

),

admissions as (

    select
        admission_id as encounter_id,
        'inpatient' as encounter_type,
        mrn,
        attending_npi as npi,
        hospital_id,
        department_id,
        admitted_at as started_at,
        discharged_at as ended_at,
        -- An open stay (no discharge yet) is "admitted"; it becomes "discharged" with the ADT discharge message.
        case when discharged_at is null then 'admitted' else 'discharged' end as encounter_status,
        admission_type,
        principal_diagnosis_code,
        discharge_disposition_code,
        _loaded_at
    from stg_adt__admissions
    where admission_id is not null

),

visits as (

    select
        stg_scheduling__appointments.appointment_id as encounter_id,
        'outpatient' as encounter_type,
        stg_scheduling__appointments.mrn,
        stg_scheduling__appointments.npi,
        stg_facilities__departments.hospital_id,
        stg_scheduling__appointments.department_id,
        stg_scheduling__appointments.scheduled_at as started_at,
        stg_scheduling__appointments.scheduled_at
        + stg_scheduling__appointments.duration_minutes * interval '1 minute' as ended_at,
        -- The scheduling vocabulary in snake case: scheduled, completed, cancelled, no_show.
        replace(lower(stg_scheduling__appointments.appointment_status), ' ', '_') as encounter_status,
        cast(null as varchar) as admission_type,
        cast(null as varchar) as principal_diagnosis_code,
        cast(null as varchar) as discharge_disposition_code,
        stg_scheduling__appointments._loaded_at
    from stg_scheduling__appointments
    left join stg_facilities__departments
        on stg_scheduling__appointments.department_id = stg_facilities__departments.department_id
    where stg_scheduling__appointments.appointment_id is not null

),

unioned as (

    select * from admissions
    union all
    select * from visits

),

final as (

    select
        *,
        -- A visit happened when it was completed; a stay always happened (ADT records arrivals only).
        encounter_type = 'inpatient' or encounter_status = 'completed' as is_attended
    from unioned

)

select * from final
