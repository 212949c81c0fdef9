-- Length of stay per inpatient department. Grain: one row per department (with its hospital) over every
-- discharged stay of the data. Length of stay is nights (HCUP): local discharge date minus local admission date,
-- so a same-day stay is 0 nights (fct_admissions.length_of_stay_days). Open stays have no length yet and are left
-- out; a stay on a department missing from the dimension keeps its ids with no name.
with

fct_admissions as (

    select * from {{ ref('fct_admissions') }}

),

dim_departments as (

    select * from {{ ref('dim_departments') }}

),

discharged_stays as (

    select
        hospital_id,
        department_id,
        length_of_stay_days as length_of_stay_nights
    from fct_admissions
    where not is_open

),

aggregated as (

    select
        hospital_id,
        department_id,
        count(*) as discharge_count,
        avg(length_of_stay_nights) as average_length_of_stay_nights,
        cast(median(length_of_stay_nights) as double) as median_length_of_stay_nights
    from discharged_stays
    group by hospital_id, department_id

),

final as (

    select
        aggregated.hospital_id,
        aggregated.department_id,
        dim_departments.department_name,
        aggregated.discharge_count,
        aggregated.average_length_of_stay_nights,
        aggregated.median_length_of_stay_nights
    from aggregated
    left join dim_departments
        on aggregated.department_id = dim_departments.department_id

)

select * from final
