-- Departments (inpatient units and clinics) with their hospital and service line. Keyed by department_id.
with

stg_facilities__departments as (

    select * from {{ ref('stg_facilities__departments') }}

),

final as (

    select
        department_id,
        hospital_id,
        department_name,
        service_line_name,
        is_inpatient,
        staffed_beds
    from stg_facilities__departments
    where department_id is not null

)

select * from final
