-- Coverage timeline per patient: the coverage periods in order of their first covered day, with plan, payer and
-- payer type, the gap since the previous period and the open period flagged. A termination arrives as a new
-- version of the coverage row (staging keeps the latest), so an open period is one with no termination date.
with

stg_payers__coverage as (

    select * from {{ ref('stg_payers__coverage') }}

),

stg_payers__plans as (

    select * from {{ ref('stg_payers__plans') }}

),

stg_payers__payers as (

    select * from {{ ref('stg_payers__payers') }}

),

coverage_with_plan as (

    select
        stg_payers__coverage.coverage_id,
        stg_payers__coverage.mrn,
        stg_payers__coverage.plan_id,
        stg_payers__plans.payer_id,
        stg_payers__payers.payer_type,
        stg_payers__plans.product_type,
        stg_payers__coverage.effective_date,
        stg_payers__coverage.termination_date,
        stg_payers__coverage.updated_at
    from stg_payers__coverage
    left join stg_payers__plans
        on stg_payers__coverage.plan_id = stg_payers__plans.plan_id
    left join stg_payers__payers
        on stg_payers__plans.payer_id = stg_payers__payers.payer_id
    -- A period without its key or its patient cannot be placed on anyone's timeline (quality gate's defect).
    where stg_payers__coverage.coverage_id is not null and stg_payers__coverage.mrn is not null

),

sequenced as (

    select
        *,
        row_number() over (
            partition by mrn order by effective_date, coverage_id
        ) as period_number,
        count(*) over (partition by mrn) as period_count,
        lag(termination_date) over (
            partition by mrn order by effective_date, coverage_id
        ) as previous_termination_date
    from coverage_with_plan

),

final as (

    select
        coverage_id,
        mrn,
        period_number,
        period_count,
        plan_id,
        payer_id,
        payer_type,
        product_type,
        effective_date,
        termination_date,
        -- Open: no termination date yet (the patient is still covered by this plan).
        termination_date is null as is_open,
        -- The latest period of the patient's timeline, open or not.
        period_number = period_count as is_latest,
        -- Uncovered days between the previous period's last covered day and this period's first; 0 when
        -- contiguous, negative when periods overlap (e.g. a plan change recorded before the old one ends).
        case
            when previous_termination_date is not null
                then {{ dbt.datediff('previous_termination_date', 'effective_date', 'day') }} - 1
        end as gap_days_before,
        updated_at
    from sequenced

)

select * from final
