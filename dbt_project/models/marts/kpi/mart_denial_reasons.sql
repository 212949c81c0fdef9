-- Top denial reasons. Grain: one row per month and denial reason (CARC code). A claim counts once, under the
-- reason of its first denial (a claim denied again after an appeal keeps its first reason), in the local month
-- of its first submission: the same claims and months as mart_claim_denials.initially_denied_count, so the two
-- reconcile month by month. The description comes from the denial reasons list; a code not on the list keeps
-- its code with no description (the quality gate reports unknown codes).
with

fct_claims as (

    select * from {{ ref('fct_claims') }}

),

denial_reasons as (

    select * from {{ ref('denial_reasons') }}

),

initially_denied_claims as (

    select
        cast(date_trunc('month', {{ local_date('submitted_at') }}) as date) as month_date,
        denial_reason_code
    from fct_claims
    where is_denied_initially

),

counted as (

    select
        month_date,
        denial_reason_code,
        count(*) as denied_claim_count
    from initially_denied_claims
    group by month_date, denial_reason_code

),

final as (

    select
        counted.month_date,
        counted.denial_reason_code,
        denial_reasons.denial_reason as denial_reason_description,
        counted.denied_claim_count,
        -- Share of the month's initially denied claims denied for this reason (ranks the top reasons).
        cast(counted.denied_claim_count as double)
            / sum(counted.denied_claim_count) over (partition by counted.month_date) as denied_claim_share,
        rank() over (
            partition by counted.month_date order by counted.denied_claim_count desc
        ) as reason_rank
    from counted
    left join denial_reasons
        on counted.denial_reason_code = denial_reasons.denial_reason_code

)

select * from final
