-- Gross charges per department and month. Grain: one row per service month and department (with its hospital).
-- A charge line belongs to the department of its encounter: the admission's department (inpatient) or the
-- appointment's clinic (outpatient). The month is that of the charge's service date (a local calendar date in
-- the billing feed). Amounts are gross charges (quantity x unit price, before payer adjustments), in USD.
-- A line whose encounter is not in the facts (an orphan, a defect) keeps a null hospital and department, so
-- the month's revenue still adds up to fct_charges.
with

fct_charges as (

    select * from {{ ref('fct_charges') }}

),

fct_admissions as (

    select * from {{ ref('fct_admissions') }}

),

fct_appointments as (

    select * from {{ ref('fct_appointments') }}

),

dim_departments as (

    select * from {{ ref('dim_departments') }}

),

encounters as (

    select
        admission_key as encounter_key,
        hospital_id,
        department_id
    from fct_admissions
    union all
    select
        appointment_key as encounter_key,
        hospital_id,
        department_id
    from fct_appointments

),

attributed_charges as (

    select
        cast(date_trunc('month', fct_charges.service_date) as date) as month_date,
        encounters.hospital_id,
        encounters.department_id,
        fct_charges.amount_usd
    from fct_charges
    left join encounters
        on fct_charges.encounter_key = encounters.encounter_key

),

aggregated as (

    select
        month_date,
        hospital_id,
        department_id,
        count(*) as charge_count,
        sum(amount_usd) as charge_amount_usd
    from attributed_charges
    group by month_date, hospital_id, department_id

),

final as (

    select
        aggregated.month_date,
        aggregated.hospital_id,
        aggregated.department_id,
        dim_departments.department_name,
        aggregated.charge_count,
        aggregated.charge_amount_usd
    from aggregated
    left join dim_departments
        on aggregated.department_id = dim_departments.department_id

)

select * from final
