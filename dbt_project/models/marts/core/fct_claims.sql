-- Claims. Grain: one row per claim (claim_key), from the pivoted claim lifecycle. De-identified: the claim and
-- its encounter are keyed hashes (the same entity names as fct_admissions / fct_appointments, so encounter_key
-- joins to their keys), the patient is the salted patient_key; no MRN. Incremental: a run reads the claims
-- int_claims_pivoted rewrote since this table's last run (watermark on _loaded_at) and replaces them
-- (delete+insert on claim_key), so a claim's status change in a daily batch replaces its row.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='claim_key',
        on_schema_change='fail',
    )
}}

with

int_claims_pivoted as (

    -- Incremental run: only the claims loaded since the last run (a filter on a table, no dedupe).
    {{ rows_loaded_since_last_run(ref('int_claims_pivoted')) }}

),

int_surrogate_salt_generated as (

    select * from {{ ref('int_surrogate_salt_generated') }}

),

final as (

    select
        {{ surrogate_key('claim', 'int_claims_pivoted.claim_id', 'int_surrogate_salt_generated.surrogate_salt') }}
            as claim_key,
        case int_claims_pivoted.encounter_type
            when 'inpatient' then
                {{ surrogate_key('admission', 'int_claims_pivoted.encounter_id',
                                 'int_surrogate_salt_generated.surrogate_salt') }}
            when 'outpatient' then
                {{ surrogate_key('appointment', 'int_claims_pivoted.encounter_id',
                                 'int_surrogate_salt_generated.surrogate_salt') }}
        end as encounter_key,
        int_claims_pivoted.encounter_type,
        {{ surrogate_key('patient', 'int_claims_pivoted.mrn', 'int_surrogate_salt_generated.surrogate_salt') }}
            as patient_key,
        int_claims_pivoted.payer_id,
        int_claims_pivoted.plan_id,
        int_claims_pivoted.billed_amount_usd,
        int_claims_pivoted.allowed_amount_usd,
        int_claims_pivoted.paid_amount_usd,
        int_claims_pivoted.submitted_at,
        int_claims_pivoted.first_denied_at,
        int_claims_pivoted.denial_reason_code,
        int_claims_pivoted.appealed_at,
        int_claims_pivoted.paid_at,
        int_claims_pivoted.final_claim_status,
        int_claims_pivoted.final_status_at,
        -- Denied on first adjudication: the payer's first answer to the submission was a denial.
        int_claims_pivoted.is_initially_denied as is_denied_initially,
        -- Denial overturned: denied, appealed, then paid after the appeal.
        int_claims_pivoted.is_paid_on_appeal,
        int_claims_pivoted.days_to_payment,
        int_claims_pivoted._loaded_at
    from int_claims_pivoted
    cross join int_surrogate_salt_generated

)

select * from final
