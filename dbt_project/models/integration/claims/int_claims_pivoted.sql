-- Claim lifecycle: one row per claim with the instant of each step of its status history (submitted, first
-- denial with its CARC reason, appeal, payment), the final status and the amounts. The history is the JSON array
-- the clearinghouse sends with every version of the claim; it is unnested here (macros/integration/json_unnest.sql).
-- Also the source of the claims snapshot (timestamp strategy on `updated_at`), so rows without a claim_id
-- (a defect the quality gate reports) are left out: a snapshot cannot track a record without a key.
-- Incremental (docs/dbt.md, "Daily builds"): a claim's row depends on that claim's latest version only (each
-- delivery carries the whole status history), so a run reads the claims with a raw row loaded since the last
-- run and replaces them (delete+insert on claim_id): a late status change rewrites the claim's lifecycle.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='claim_id',
        on_schema_change='fail',
    )
}}

with

stg_claims__claims as (

    -- Incremental run: only the claims with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_claims__claims') }}

),

claims as (

    select * from stg_claims__claims
    where claim_id is not null

),

status_events as (

    select
        claims.claim_id,
        lower({{ json_unnested_text('status_events', 'status') }}) as claim_status,
        {{ utc_timestamp(json_unnested_text('status_events', 'at') ~ '::timestamptz') }} as status_at,
        upper({{ json_unnested_text('status_events', 'reason_code') }}) as denial_reason_code
    from claims
    {{ json_array_unnest('claims.status_history', 'status_events') }}

),

first_denials as (

    -- The first denial's reason is the one reported (a claim denied again after an appeal keeps its first CARC).
    select
        claim_id,
        denial_reason_code
    from status_events
    where claim_status = 'denied'
    qualify row_number() over (partition by claim_id order by status_at) = 1

),

steps as (

    select
        claim_id,
        min(case when claim_status = 'submitted' then status_at end) as submitted_at,
        min(case when claim_status = 'denied' then status_at end) as first_denied_at,
        min(case when claim_status = 'appealed' then status_at end) as appealed_at,
        min(case when claim_status = 'paid' then status_at end) as paid_at,
        count(*) as status_event_count
    from status_events
    group by claim_id

),

final as (

    select
        claims.claim_id,
        claims.encounter_id,
        claims.encounter_type,
        claims.mrn,
        claims.payer_id,
        claims.plan_id,
        -- The history's submission; staging's submitted_at when the history lacks it.
        coalesce(steps.submitted_at, claims.submitted_at) as submitted_at,
        steps.first_denied_at,
        first_denials.denial_reason_code,
        steps.appealed_at,
        steps.paid_at,
        -- The status of the last history entry (staging tests it equals the claim's status).
        claims.claim_status as final_claim_status,
        claims.last_history_status_at as final_status_at,
        steps.first_denied_at is not null as is_initially_denied,
        -- Denial overturned: denied, appealed, then paid after the appeal (CARC kept from the denial).
        coalesce(
            steps.first_denied_at is not null
            and steps.appealed_at is not null
            and steps.paid_at >= steps.appealed_at,
            false
        ) as is_paid_on_appeal,
        {{ dbt.datediff('coalesce(steps.submitted_at, claims.submitted_at)', 'steps.paid_at', 'day') }}
            as days_to_payment,
        coalesce(steps.status_event_count, 0) as status_event_count,
        claims.billed_amount_usd,
        claims.allowed_amount_usd,
        claims.paid_amount_usd,
        claims.updated_at,
        claims._loaded_at
    from claims
    left join steps
        on claims.claim_id = steps.claim_id
    left join first_denials
        on claims.claim_id = first_denials.claim_id

)

select * from final
