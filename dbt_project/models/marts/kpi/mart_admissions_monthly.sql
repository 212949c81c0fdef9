-- Admissions, discharges and length of stay per hospital and month. Grain: one row per hospital and month, on
-- the hospital's local calendar (macros/integration/calendar.sql), as clinical day counts are:
--   * an admission counts in the local month it was admitted; a discharge in the local month it ended;
--   * length of stay is nights = local discharge date minus local admission date (a same-day stay is 0), and
--     the average and median are over the stays discharged in the month (open stays have no length yet).
with

fct_admissions as (

    select * from {{ ref('fct_admissions') }}

),

stays as (

    select
        hospital_id,
        {{ local_date('admitted_at') }} as admission_local_date,
        {{ local_date('discharged_at') }} as discharge_local_date
    from fct_admissions

),

stays_with_nights as (

    select
        hospital_id,
        cast(date_trunc('month', admission_local_date) as date) as admission_month,
        cast(date_trunc('month', discharge_local_date) as date) as discharge_month,
        {{ days_between('admission_local_date', 'discharge_local_date') }} as length_of_stay_nights
    from stays

),

admissions_by_month as (

    select
        hospital_id,
        admission_month as month_date,
        count(*) as admission_count
    from stays_with_nights
    group by hospital_id, admission_month

),

discharges_by_month as (

    select
        hospital_id,
        discharge_month as month_date,
        count(*) as discharge_count,
        avg(length_of_stay_nights) as average_length_of_stay_nights,
        median(length_of_stay_nights) as median_length_of_stay_nights
    from stays_with_nights
    where discharge_month is not null
    group by hospital_id, discharge_month

),

final as (

    select
        coalesce(admissions_by_month.hospital_id, discharges_by_month.hospital_id) as hospital_id,
        coalesce(admissions_by_month.month_date, discharges_by_month.month_date) as month_date,
        coalesce(admissions_by_month.admission_count, 0) as admission_count,
        coalesce(discharges_by_month.discharge_count, 0) as discharge_count,
        discharges_by_month.average_length_of_stay_nights,
        cast(discharges_by_month.median_length_of_stay_nights as double) as median_length_of_stay_nights
    from admissions_by_month
    full outer join discharges_by_month
        on admissions_by_month.hospital_id = discharges_by_month.hospital_id
        and admissions_by_month.month_date = discharges_by_month.month_date

)

select * from final
