-- Payer mix of inpatient admissions. Grain: one row per local admission month and payer type.
-- An admission's payer type is that of the coverage in effect on its admission day; none in effect is self-pay
-- (rules in int_admissions_joined_to_coverage). admission_share = the payer type's admissions / all admissions
-- of the month, so the shares of a month add up to 1.
with

int_admissions_joined_to_coverage as (

    select * from {{ ref('int_admissions_joined_to_coverage') }}

),

admissions as (

    select
        cast(date_trunc('month', admission_date) as date) as month_date,
        payer_type
    from int_admissions_joined_to_coverage

),

aggregated as (

    select
        month_date,
        payer_type,
        count(*) as admission_count
    from admissions
    group by month_date, payer_type

),

final as (

    select
        month_date,
        payer_type,
        admission_count,
        cast(admission_count as double) / sum(admission_count) over (partition by month_date) as admission_share
    from aggregated

)

select * from final
