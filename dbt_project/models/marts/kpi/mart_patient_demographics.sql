-- Inpatient demographics. Grain: one row per sex and age band. The population is the inpatients of the data's
-- period: every patient with at least one admission (open stays included). A patient counts once, in the age band
-- of his first admission (fct_admissions.age_band_at_admission: age on the admission date, Safe Harbor bands with
-- 90+ on top), and with the sex of the patient dimension ('U' when the patient is not in it yet, a late-arriving
-- registration). Admissions without a patient (missing MRN, a defect) cannot be attributed and are left out.
with

fct_admissions as (

    select * from {{ ref('fct_admissions') }}

),

dim_patients as (

    select * from {{ ref('dim_patients') }}

),

first_admissions as (

    select
        patient_key,
        age_band_at_admission,
        row_number() over (
            partition by patient_key order by admitted_at, admission_key
        ) as admission_number
    from fct_admissions
    where patient_key is not null

),

inpatients as (

    select
        first_admissions.patient_key,
        coalesce(dim_patients.sex, 'U') as sex,
        first_admissions.age_band_at_admission as age_band
    from first_admissions
    left join dim_patients
        on first_admissions.patient_key = dim_patients.patient_key
    where first_admissions.admission_number = 1

),

counted as (

    select
        sex,
        age_band,
        count(*) as patient_count
    from inpatients
    group by sex, age_band

),

final as (

    select
        sex,
        age_band,
        patient_count,
        cast(patient_count as double) / sum(patient_count) over () as patient_share
    from counted

)

select * from final
