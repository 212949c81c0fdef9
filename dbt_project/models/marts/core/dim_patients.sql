-- De-identified patients (HIPAA Safe Harbor, docs/dbt.md "Marts"): a keyed surrogate key, sex, age band,
-- ZIP3 and state, preferred language, home hospital. No name, MRN, SSN, phone, e-mail, street, city or any date
-- of the patient. Rows without an MRN (a defect for the quality gate) have no key and are left out.
-- Incremental (docs/dbt.md, "Daily builds"; delete+insert on patient_key): a run rewrites from staging the
-- patients with a row loaded since the last run and the patients whose age band changes because the data's
-- last day moved (found from raw birth dates, no dedupe); every other row is carried over from this table
-- (a copy, no staging read) with the new age_as_of_date and `_loaded_through`. The watermark is that one
-- table-wide instant (the latest load of a patient record read), not a per-patient load time: a patient's
-- record-change date would be a date of the patient.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='patient_key',
        on_schema_change='fail',
    )
}}

with

{% if is_incremental() -%}
changed_patients as (

    -- The patients with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_registration__patients', watermark_column='_loaded_through') }}

),

changed_admissions as (

    {{ staging_rows_since_last_run('stg_adt__admissions', watermark_column='_loaded_through') }}

),

changed_appointments as (

    {{ staging_rows_since_last_run('stg_scheduling__appointments', watermark_column='_loaded_through') }}

),

-- The data's last day moves forward only (raw is append-only and a record's latest version is its newest):
-- the previous day, or a later record change among the records loaded since the last run.
record_days as (

    select max(age_as_of_date) as record_date from {{ this }}
    union all
    select cast(max(updated_at) as date) as record_date from changed_patients where mrn is not null
    union all
    select cast(max(updated_at) as date) as record_date from changed_admissions where admission_id is not null
    union all
    select cast(max(updated_at) as date) as record_date from changed_appointments where appointment_id is not null

),

loaded_through as (

    select max(loaded_at) as _loaded_through
    from (
        select max(_loaded_through) as loaded_at from {{ this }}
        union all
        select max(_loaded_at) as loaded_at from changed_patients where mrn is not null
    ) as load_instants

),

previous_reference_day as (

    select max(age_as_of_date) as age_as_of_date from {{ this }}

),

{% else -%}
-- Ages are as of the data's last day: the latest day any keyed patient, admission or appointment record
-- changed. Not current_date, so a rebuild of the same data gives the same bands.
record_days as (

    select cast(max(updated_at) as date) as record_date from {{ ref('stg_registration__patients') }}
    where mrn is not null
    union all
    select cast(max(updated_at) as date) as record_date from {{ ref('stg_adt__admissions') }}
    where admission_id is not null
    union all
    select cast(max(updated_at) as date) as record_date from {{ ref('stg_scheduling__appointments') }}
    where appointment_id is not null

),

loaded_through as (

    select max(_loaded_at) as _loaded_through from {{ ref('stg_registration__patients') }}
    where mrn is not null

),

{% endif -%}
reference_day as (

    select max(record_date) as age_as_of_date
    from record_days

),

{% if is_incremental() -%}
patients_to_rewrite as (

    select mrn from changed_patients
    where mrn is not null
    union
    -- Patients whose age band differs between the previous and the new last day (any version's birth date).
    {{ stg_registration__patients_keys_aging(
        '(select age_as_of_date from previous_reference_day)', '(select age_as_of_date from reference_day)') }}

),

{% endif -%}
stg_registration__patients as (

    -- Incremental run: only the patients to rewrite, deduplicated after the key filter.
    {{ staging_rows_for_keys('stg_registration__patients', 'select mrn from patients_to_rewrite') }}

),

restricted_zip3 as (

    select * from {{ ref('restricted_zip3') }}

),

int_surrogate_salt_generated as (

    select * from {{ ref('int_surrogate_salt_generated') }}

),

deidentified as (

    select
        {{ surrogate_key('patient', 'stg_registration__patients.mrn', 'int_surrogate_salt_generated.surrogate_salt') }}
            as patient_key,
        stg_registration__patients.sex,
        {{ age_band('stg_registration__patients.birth_date', 'reference_day.age_as_of_date') }} as age_band,
        reference_day.age_as_of_date,
        -- Safe Harbor: ZIP to three digits, "000" where the three-digit area has 20,000 people or fewer.
        {{ zip3_safe_harbor('stg_registration__patients.zip_code', 'restricted_zip3.zip3') }} as zip3,
        stg_registration__patients.state_code,
        stg_registration__patients.preferred_language,
        stg_registration__patients.home_hospital_id,
        loaded_through._loaded_through
    from stg_registration__patients
    cross join int_surrogate_salt_generated
    cross join reference_day
    cross join loaded_through
    left join restricted_zip3
        on left(stg_registration__patients.zip_code, 3) = restricted_zip3.zip3
    where stg_registration__patients.mrn is not null

),

{% if is_incremental() -%}
carried_over as (

    -- The other patients, unchanged but for the new last day (their band did not change) and watermark.
    select
        this_table.patient_key,
        this_table.sex,
        this_table.age_band,
        reference_day.age_as_of_date,
        this_table.zip3,
        this_table.state_code,
        this_table.preferred_language,
        this_table.home_hospital_id,
        loaded_through._loaded_through
    from {{ this }} as this_table
    cross join reference_day
    cross join loaded_through
    where this_table.patient_key not in (select deidentified.patient_key from deidentified)

),

final as (

    select * from deidentified
    union all
    select * from carried_over

)

{%- else -%}
final as (

    select * from deidentified

)
{%- endif %}

select * from final
