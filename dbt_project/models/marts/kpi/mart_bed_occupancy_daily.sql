-- Daily bed occupancy per hospital. Grain: one row per hospital and census day (hospital-local calendar).
-- Midnight census of day D (int_census_counted): inpatients admitted on or before D and discharged after D (or
-- still open), so a same-day stay is never counted and a stay is not counted on its discharge day. A hospital's
-- census and staffed beds are the sums over its inpatient departments; occupancy rate = midnight census / staffed
-- beds (null when the hospital has no staffed beds). Staffed beds are the departments' current counts.
with

int_census_counted as (

    select * from {{ ref('int_census_counted') }}

),

aggregated as (

    select
        census_date,
        hospital_id,
        -- Sums are cast to bigint: DuckDB's sum of integers is a 128-bit HUGEINT, which BI tools and pandas
        -- read as a float (11.0 beds).
        cast(sum(midnight_census) as bigint) as midnight_census,
        cast(sum(staffed_beds) as bigint) as staffed_beds
    from int_census_counted
    group by census_date, hospital_id

),

final as (

    select
        census_date,
        hospital_id,
        midnight_census,
        staffed_beds,
        case when staffed_beds > 0 then cast(midnight_census as double) / staffed_beds end as occupancy_rate
    from aggregated

)

select * from final
