-- Daily midnight census per inpatient department: one row per department and day, from the first admission
-- day of the data to its last day. Midnight census (AHA, HCUP) of day D = stays admitted on or before D and
-- discharged after D (or still open), on the hospital's local calendar: a stay is counted for every midnight it
-- spans, so a same-day stay (admitted and discharged on one day) is never in the census, and a stay is not
-- counted on its discharge day. Occupancy = census / staffed beds (current staffed beds of the department).
with

stg_adt__admissions as (

    select * from {{ ref('stg_adt__admissions') }}

),

stg_facilities__departments as (

    select * from {{ ref('stg_facilities__departments') }}

),

stays as (

    select
        admission_id,
        department_id,
        {{ local_date('admitted_at') }} as admission_date,
        {{ local_date('discharged_at') }} as discharge_date,
        updated_at
    from stg_adt__admissions
    where admission_id is not null

),

data_window as (

    select
        min(admission_date) as first_day,
        max({{ local_date('updated_at') }}) as last_day
    from stays

),

days as (

    {{ date_series('data_window', 'first_day', 'last_day', 'census_date') }}

),

inpatient_departments as (

    select
        department_id,
        hospital_id,
        staffed_beds
    from stg_facilities__departments
    where is_inpatient

),

department_days as (

    select
        inpatient_departments.department_id,
        inpatient_departments.hospital_id,
        inpatient_departments.staffed_beds,
        days.census_date
    from inpatient_departments
    cross join days

),

counted as (

    select
        department_days.department_id,
        department_days.census_date,
        count(stays.admission_id) as midnight_census
    from department_days
    left join stays
        on department_days.department_id = stays.department_id
        and stays.admission_date <= department_days.census_date
        and (stays.discharge_date > department_days.census_date or stays.discharge_date is null)
    group by department_days.department_id, department_days.census_date

),

final as (

    select
        department_days.department_id,
        department_days.census_date,
        department_days.hospital_id,
        counted.midnight_census,
        department_days.staffed_beds,
        case
            when department_days.staffed_beds > 0
                then cast(counted.midnight_census as double) / department_days.staffed_beds
        end as occupancy_rate
    from department_days
    inner join counted
        on department_days.department_id = counted.department_id
        and department_days.census_date = counted.census_date

)

select * from final
