-- Claim denials per payer and month. Grain: one row per payer and month of first submission, on the hospital's
-- local calendar like every KPI mart (macros/integration/calendar.sql): the clearinghouse stamps claims in UTC,
-- and a claim submitted at 20:00 local on the last day of a month belongs to that month, not the next.
-- A claim counts in the month it was first submitted, whatever happened later.
with

fct_claims as (

    select * from {{ ref('fct_claims') }}

),

claims as (

    select
        payer_id,
        cast(date_trunc('month', {{ local_date('submitted_at') }}) as date) as submission_month,
        is_denied_initially,
        is_paid_on_appeal
    from fct_claims

),

aggregated as (

    select
        payer_id,
        submission_month,
        count(*) as claim_count,
        -- Counts as bigint (a sum of integers is a HUGEINT on DuckDB, read as a float by BI tools).
        cast(sum(case when is_denied_initially then 1 else 0 end) as bigint) as initially_denied_count,
        cast(sum(case when is_paid_on_appeal then 1 else 0 end) as bigint) as paid_on_appeal_count
    from claims
    group by payer_id, submission_month

),

final as (

    select
        payer_id,
        -- month_date is the KPI marts' common month column; submission_month is kept for existing readers.
        submission_month as month_date,
        submission_month,
        claim_count,
        initially_denied_count,
        -- Initial denial rate: claims denied on first adjudication over all claims submitted in the month.
        cast(initially_denied_count as double) / claim_count as initial_denial_rate,
        paid_on_appeal_count,
        -- Overturn rate: initially denied claims later paid on appeal, over the initially denied (null if none).
        cast(paid_on_appeal_count as double) / nullif(initially_denied_count, 0) as appeal_overturn_rate
    from aggregated

)

select * from final
