-- Appointment no-show rate per weekday of the visit. Grain: one row per ISO day of week (1 = Monday).
-- No-show rule (shared by the three no-show marts): the denominator is the appointments that were due to be
-- attended and whose outcome is known, Completed or No Show; cancelled appointments were never due and
-- Scheduled ones have no outcome yet, so both are left out. no_show_rate = no-shows / those appointments.
-- The weekday is that of the visit on the hospital's local calendar.
with

fct_appointments as (

    select * from {{ ref('fct_appointments') }}

),

due_appointments as (

    select
        {{ local_date('scheduled_at') }} as scheduled_local_date,
        is_no_show
    from fct_appointments
    where appointment_status in ('Completed', 'No Show')

),

with_weekday as (

    select
        cast({{ iso_day_of_week('scheduled_local_date') }} as integer) as iso_day_of_week,
        is_no_show
    from due_appointments

),

aggregated as (

    select
        iso_day_of_week,
        count(*) as appointment_count,
        -- A count as bigint (a sum of integers is a HUGEINT on DuckDB, read as a float by BI tools).
        cast(sum(case when is_no_show then 1 else 0 end) as bigint) as no_show_count
    from with_weekday
    group by iso_day_of_week

),

final as (

    select
        iso_day_of_week,
        {{ weekday_name('iso_day_of_week') }} as weekday_name,
        appointment_count,
        no_show_count,
        cast(no_show_count as double) / appointment_count as no_show_rate
    from aggregated

)

select * from final
