-- Appointment no-show rate per clinic department. Grain: one row per department (with its hospital).
-- No-show rule as in mart_no_shows_by_weekday: Completed and No Show appointments only.
-- The hospital is the department's (fct_appointments); a department missing from the dimension keeps its id
-- with no name.
with

fct_appointments as (

    select * from {{ ref('fct_appointments') }}

),

dim_departments as (

    select * from {{ ref('dim_departments') }}

),

due_appointments as (

    select
        hospital_id,
        department_id,
        is_no_show
    from fct_appointments
    where appointment_status in ('Completed', 'No Show')

),

aggregated as (

    select
        hospital_id,
        department_id,
        count(*) as appointment_count,
        -- A count as bigint (a sum of integers is a HUGEINT on DuckDB, read as a float by BI tools).
        cast(sum(case when is_no_show then 1 else 0 end) as bigint) as no_show_count
    from due_appointments
    group by hospital_id, department_id

),

final as (

    select
        aggregated.hospital_id,
        aggregated.department_id,
        dim_departments.department_name,
        aggregated.appointment_count,
        aggregated.no_show_count,
        cast(aggregated.no_show_count as double) / aggregated.appointment_count as no_show_rate
    from aggregated
    left join dim_departments
        on aggregated.department_id = dim_departments.department_id

)

select * from final
