{#- The SQL of stg_billing__charges (the model calls it unscoped); narrowed: macros/staging/scoped.sql. -#}
{% macro stg_billing__charges_query(keys_loaded_after=none, keys_in=none) -%}
-- Charge lines of admissions (inpatient) and completed clinic visits (outpatient), latest posting of each.
-- Holds PHI (MRN, service dates). Negative amounts and malformed revenue codes are kept for the quality gate.
with

source as (

    select * from {{ source('billing', 'charges') }}
    {{ where_key_in_scope('charge_id', source('billing', 'charges'), keys_loaded_after, keys_in) }}

),

renamed as (

    select
        {{ clean_text('charge_id') }} as charge_id,
        {{ clean_text('encounter_id') }} as encounter_id,
        -- inpatient: encounter_id is an admission_id; outpatient: an appointment_id.
        {{ clean_lower('encounter_type') }} as encounter_type,
        {{ clean_text('mrn') }} as mrn,
        {{ clean_text('revenue_code') }} as revenue_code,
        {{ clean_text('charge_description') }} as charge_description,
        service_date,
        quantity,
        unit_price as unit_price_usd,
        amount as charge_amount_usd,
        {{ utc_timestamp('posted_at') }} as posted_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('charge_id', 'posted_at') }}

),

final as (

    select * from latest

)

select * from final
{%- endmacro %}
