-- De-identified patients (HIPAA Safe Harbor, docs/dbt.md "Marts"): a keyed surrogate key, sex, age band,
-- ZIP3 and state, preferred language, home hospital. No name, MRN, SSN, phone, e-mail, street, city or any date
-- of the patient. Rows without an MRN (a defect for the quality gate) have no key and are left out.
with

stg_registration__patients as (

    select * from {{ ref('stg_registration__patients') }}

),

stg_adt__admissions as (

    select * from {{ ref('stg_adt__admissions') }}

),

stg_scheduling__appointments as (

    select * from {{ ref('stg_scheduling__appointments') }}

),

restricted_zip3 as (

    select * from {{ ref('restricted_zip3') }}

),

int_surrogate_salt_generated as (

    select * from {{ ref('int_surrogate_salt_generated') }}

),

-- Ages are as of the data's last day: the latest day any patient, admission or appointment record changed.
-- Not current_date, so a rebuild of the same data gives the same bands.
record_days as (

    select cast(max(updated_at) as date) as record_date from stg_registration__patients
    union all
    select cast(max(updated_at) as date) as record_date from stg_adt__admissions
    union all
    select cast(max(updated_at) as date) as record_date from stg_scheduling__appointments

),

reference_day as (

    select max(record_date) as age_as_of_date
    from record_days

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
        stg_registration__patients.home_hospital_id
    from stg_registration__patients
    cross join int_surrogate_salt_generated
    cross join reference_day
    left join restricted_zip3
        on left(stg_registration__patients.zip_code, 3) = restricted_zip3.zip3
    where stg_registration__patients.mrn is not null

),

final as (

    select * from deidentified

)

select * from final
