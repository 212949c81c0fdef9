-- Coverage timeline per patient: the coverage periods in order of their first covered day, with plan, payer and
-- payer type, the gap since the previous period and the open period flagged. A termination arrives as a new
-- version of the coverage row (staging keeps the latest), so an open period is one with no termination date.
-- Incremental (docs/dbt.md, "Daily builds"): a period's number, count, latest flag and gap depend on every
-- period of its patient, so a run re-sequences each *patient* with a coverage row loaded since the last run:
-- all of that patient's periods are read again and replaced (delete+insert on coverage_id). A period moved to
-- another patient re-sequences both (its former patient is found in this table).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='coverage_id',
        on_schema_change='fail',
    )
}}

with

{% if is_incremental() -%}
changed_coverage as (

    -- The coverage records with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_payers__coverage') }}

),

patients_to_sequence as (

    -- Their patients now, and the patients they belonged to before (a period moved to another patient).
    select mrn from changed_coverage
    where mrn is not null
    union
    select mrn from {{ this }}
    where coverage_id in (select coverage_id from changed_coverage)

),

coverage_to_sequence as (

    -- Every period of those patients: the changed ones and the ones this table holds.
    select coverage_id from changed_coverage
    union
    select coverage_id from {{ this }}
    where mrn in (select mrn from patients_to_sequence)

),

{% endif -%}
stg_payers__coverage as (

    {{ staging_rows_for_keys('stg_payers__coverage', 'select coverage_id from coverage_to_sequence') }}

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
        stg_payers__coverage.updated_at,
        stg_payers__coverage._loaded_at
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
        updated_at,
        _loaded_at
    from sequenced

)

select * from final
