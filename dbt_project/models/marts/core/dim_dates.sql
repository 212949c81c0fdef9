-- Calendar dimension. A fixed span (vars dim_dates_start / dim_dates_end) rather than the data's span, so the
-- table does not change from one daily run to the next and covers future appointment dates.
with

spine as (

    {{ date_spine(var('dim_dates_start', '2015-01-01'), var('dim_dates_end', '2035-12-31')) }}

),

described as (

    select
        date_day,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month,
        cast({{ iso_day_of_week('date_day') }} as integer) as iso_day_of_week,
        cast(date_trunc('month', date_day) as date) as month_start_date
    from spine

),

final as (

    select
        *,
        {{ weekday_name('iso_day_of_week') }} as weekday_name,
        iso_day_of_week >= 6 as is_weekend
    from described

)

select * from final
