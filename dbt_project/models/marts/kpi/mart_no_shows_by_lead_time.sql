-- Appointment no-show rate per booking lead time. Grain: one row per lead time band.
-- No-show rule as in mart_no_shows_by_weekday: Completed and No Show appointments only.
-- Lead time = local visit date minus local booking date, in days. Bands, in order: same day (0), 1-7, 8-14,
-- 15-30, 31-60, 61+ days; a booking after the visit (negative lead time, a source defect the quality gate
-- reports) is kept in an 'invalid' band ordered last so the counts still add up to the appointments.
with

fct_appointments as (

    select * from {{ ref('fct_appointments') }}

),

due_appointments as (

    select
        {{ days_between(local_date('booked_at'), local_date('scheduled_at')) }} as lead_time_days,
        is_no_show
    from fct_appointments
    where appointment_status in ('Completed', 'No Show')

),

banded as (

    select
        case
            when lead_time_days is null or lead_time_days < 0 then 'invalid'
            when lead_time_days = 0 then '0 days'
            when lead_time_days <= 7 then '1-7 days'
            when lead_time_days <= 14 then '8-14 days'
            when lead_time_days <= 30 then '15-30 days'
            when lead_time_days <= 60 then '31-60 days'
            else '61+ days'
        end as lead_time_band,
        case
            when lead_time_days is null or lead_time_days < 0 then 7
            when lead_time_days = 0 then 1
            when lead_time_days <= 7 then 2
            when lead_time_days <= 14 then 3
            when lead_time_days <= 30 then 4
            when lead_time_days <= 60 then 5
            else 6
        end as lead_time_band_order,
        is_no_show
    from due_appointments

),

final as (

    select
        lead_time_band,
        lead_time_band_order,
        count(*) as appointment_count,
        -- A count as bigint (a sum of integers is a HUGEINT on DuckDB, read as a float by BI tools).
        cast(sum(case when is_no_show then 1 else 0 end) as bigint) as no_show_count,
        cast(sum(case when is_no_show then 1 else 0 end) as double) / count(*) as no_show_rate
    from banded
    group by lead_time_band, lead_time_band_order

)

select * from final
