-- 30-day all-cause readmissions per month (HRRP-like). Grain: one row per local month of the index discharge.
-- The rules are coded in int_readmissions_paired and restated here:
--   * Denominator (index_discharge_count): eligible index stays discharged in the month: discharged alive, not
--     transferred out to another acute care hospital (disposition 02), not a death (20), not open.
--   * Numerator (readmission_count): those index stays whose same patient's next admission starts 0 to 30 local
--     calendar days after the index discharge (day 30 counts, day 31 does not; same-day readmission is day 0),
--     unless that readmission is planned (elective, principal diagnosis Z51.11, chemotherapy). A transfer's
--     receiving stay is never a readmission because the transferring stay is not an index stay.
--   * A readmission belongs to the month of its index discharge, not of the readmission.
--   * Index stays discharged within 30 days of the data's last day do not have their full window yet:
--     incomplete_follow_up_count says how many, and is_provisional marks the month's rate as still rising.
with

int_readmissions_paired as (

    select * from {{ ref('int_readmissions_paired') }}

),

index_stays as (

    select
        cast(date_trunc('month', index_discharge_date) as date) as month_date,
        is_30_day_readmission,
        has_complete_follow_up
    from int_readmissions_paired
    where is_eligible_index

),

aggregated as (

    select
        month_date,
        count(*) as index_discharge_count,
        -- Counts as bigint (a sum of integers is a HUGEINT on DuckDB, read as a float by BI tools).
        cast(sum(case when is_30_day_readmission then 1 else 0 end) as bigint) as readmission_count,
        cast(sum(case when has_complete_follow_up then 0 else 1 end) as bigint) as incomplete_follow_up_count
    from index_stays
    group by month_date

),

final as (

    select
        month_date,
        index_discharge_count,
        readmission_count,
        -- 30-day readmission rate = readmissions / eligible index discharges of the month.
        cast(readmission_count as double) / index_discharge_count as readmission_rate,
        incomplete_follow_up_count,
        incomplete_follow_up_count > 0 as is_provisional
    from aggregated

)

select * from final
