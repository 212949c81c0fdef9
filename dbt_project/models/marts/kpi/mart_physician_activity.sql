-- Physician activity per month. Grain: one row per local month and physician (NPI).
-- admission_count: inpatient admissions the physician attended, by local admission month.
-- appointment_count: clinic appointments the physician held (status Completed: the patient was seen), by local
-- visit month; cancelled, no-show and still scheduled appointments are not activity.
-- Specialty and department are the physician's current ones (dim_physicians); an NPI missing from the registry
-- keeps its counts with a null specialty and department.
with

fct_admissions as (

    select * from {{ ref('fct_admissions') }}

),

fct_appointments as (

    select * from {{ ref('fct_appointments') }}

),

dim_physicians as (

    select * from {{ ref('dim_physicians') }}

),

admissions_by_month as (

    select
        cast(date_trunc('month', {{ local_date('admitted_at') }}) as date) as month_date,
        attending_npi as npi,
        count(*) as admission_count
    from fct_admissions
    where attending_npi is not null
    group by month_date, npi

),

appointments_by_month as (

    select
        cast(date_trunc('month', {{ local_date('scheduled_at') }}) as date) as month_date,
        npi,
        count(*) as appointment_count
    from fct_appointments
    where npi is not null and appointment_status = 'Completed'
    group by month_date, npi

),

activity as (

    select
        coalesce(admissions_by_month.month_date, appointments_by_month.month_date) as month_date,
        coalesce(admissions_by_month.npi, appointments_by_month.npi) as npi,
        coalesce(admissions_by_month.admission_count, 0) as admission_count,
        coalesce(appointments_by_month.appointment_count, 0) as appointment_count
    from admissions_by_month
    full outer join appointments_by_month
        on admissions_by_month.month_date = appointments_by_month.month_date
        and admissions_by_month.npi = appointments_by_month.npi

),

final as (

    select
        activity.month_date,
        activity.npi,
        dim_physicians.specialty_name,
        dim_physicians.department_id,
        dim_physicians.hospital_id,
        activity.admission_count,
        activity.appointment_count
    from activity
    left join dim_physicians
        on activity.npi = dim_physicians.npi

)

select * from final
