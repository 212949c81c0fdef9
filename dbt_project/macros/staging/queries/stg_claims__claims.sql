{#- The SQL of stg_claims__claims (the model calls it unscoped); narrowed: macros/staging/scoped.sql. -#}
{% macro stg_claims__claims_query(keys_loaded_after=none, keys_in=none) -%}
-- Claims from the clearinghouse, latest version of each. Every delivery carries the status history so far
-- (a JSON array of {status, at, reason_code}); staging keeps it whole and reads its size and last entry.
-- Holds PHI (MRN, encounter). Negative billed amounts are kept for the quality gate.
with

source as (

    select * from {{ source('claims', 'claims') }}
    {{ where_key_in_scope('claim_id', source('claims', 'claims'), keys_loaded_after, keys_in) }}

),

renamed as (

    select
        {{ clean_text('claim_id') }} as claim_id,
        {{ clean_text('encounter_id') }} as encounter_id,
        {{ clean_lower('encounter_type') }} as encounter_type,
        {{ clean_text('mrn') }} as mrn,
        {{ clean_text('payer_id') }} as payer_id,
        {{ clean_text('plan_id') }} as plan_id,
        billed_amount as billed_amount_usd,
        allowed_amount as allowed_amount_usd,
        paid_amount as paid_amount_usd,
        -- submitted, denied, appealed or paid.
        {{ clean_lower('claim_status') }} as claim_status,
        -- CARC code of the (first) denial; it stays on the claim after a successful appeal.
        {{ clean_upper('denial_reason_code') }} as denial_reason_code,
        {{ utc_timestamp('submitted_at') }} as submitted_at,
        status_history,
        {{ json_array_length('status_history') }} as status_event_count,
        lower({{ json_element_text('status_history', -1, 'status') }}) as last_history_status,
        {{ utc_timestamp(hospital.json_element_text('status_history', -1, 'at') ~ '::timestamptz') }}
            as last_history_status_at,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('claim_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
{%- endmacro %}
