-- Inpatient admissions. Grain: one row per admission. Incremental: a run reads only the staging rows loaded
-- since the last run (watermark on _loaded_at) and replaces those admissions (delete+insert on admission_key),
-- so a discharge that closes an open stay in a daily batch replaces the open row.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='admission_key',
        on_schema_change='fail',
    )
}}

with

stg_adt__admissions as (

    -- Incremental run: only the records with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_adt__admissions') }}

),

stg_registration__patients as (

    -- Incremental run: only the patients of the admissions read (for their age band), not every patient.
    {{ staging_rows_for_keys('stg_registration__patients', 'select mrn from stg_adt__admissions') }}

),

icd10cm_chapters as (

    select * from {{ ref('icd10cm_chapters') }}

),

int_surrogate_salt_generated as (

    select * from {{ ref('int_surrogate_salt_generated') }}

),

new_admissions as (

    select stg_adt__admissions.*
    from stg_adt__admissions
    -- A row without an admission_id is a defect for the quality gate, not an admission.
    where stg_adt__admissions.admission_id is not null

),

final as (

    select
        {{ surrogate_key('admission', 'new_admissions.admission_id', 'int_surrogate_salt_generated.surrogate_salt') }}
            as admission_key,
        {{ surrogate_key('patient', 'new_admissions.mrn', 'int_surrogate_salt_generated.surrogate_salt') }}
            as patient_key,
        new_admissions.attending_npi,
        new_admissions.hospital_id,
        new_admissions.department_id,
        new_admissions.admitted_at,
        new_admissions.discharged_at,
        cast(new_admissions.admitted_at as date) as admission_date,
        cast(new_admissions.discharged_at as date) as discharge_date,
        -- Length of stay counts midnights (nights in hospital) on the hospital's local calendar, as HCUP does,
        -- not UTC dates; null while the stay is open.
        {{ days_between(local_date('new_admissions.admitted_at'), local_date('new_admissions.discharged_at')) }}
            as length_of_stay_days,
        new_admissions.admission_type,
        new_admissions.discharge_disposition_code,
        new_admissions.principal_diagnosis_code,
        -- The chapter whose code range holds the code's category (first three characters).
        icd10cm_chapters.chapter_number as principal_diagnosis_chapter_number,
        icd10cm_chapters.chapter_name as principal_diagnosis_chapter_name,
        -- Age band as of the local admission date (not the data's last day as in dim_patients): what the stay
        -- saw, on the hospital's calendar like every clinical day count.
        {{ age_band('stg_registration__patients.birth_date', local_date('new_admissions.admitted_at')) }}
            as age_band_at_admission,
        new_admissions.discharged_at is null as is_open,
        new_admissions._loaded_at
    from new_admissions
    cross join int_surrogate_salt_generated
    left join stg_registration__patients
        on new_admissions.mrn = stg_registration__patients.mrn
    left join icd10cm_chapters
        on left(new_admissions.principal_diagnosis_code, 3)
            between icd10cm_chapters.first_code and icd10cm_chapters.last_code

)

select * from final
