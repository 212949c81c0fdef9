-- Charge lines. Grain: one row per charge line. Incremental: a run reads only the staging rows loaded since the
-- last run (watermark on _loaded_at) and replaces those lines (delete+insert on charge_key), so a re-posted line
-- replaces the earlier posting. encounter_key is the admission_key (inpatient) or appointment_key (outpatient).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='charge_key',
        on_schema_change='fail',
    )
}}

with

stg_billing__charges as (

    -- Incremental run: only the records with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_billing__charges') }}

),

int_surrogate_salt_generated as (

    select * from {{ ref('int_surrogate_salt_generated') }}

),

new_charges as (

    select stg_billing__charges.*
    from stg_billing__charges
    -- A row without a charge_id is a defect for the quality gate, not a charge line.
    where stg_billing__charges.charge_id is not null

),

final as (

    select
        {{ surrogate_key('charge', 'new_charges.charge_id', 'int_surrogate_salt_generated.surrogate_salt') }}
            as charge_key,
        case new_charges.encounter_type
            when 'inpatient' then
                {{ surrogate_key('admission', 'new_charges.encounter_id', 'int_surrogate_salt_generated.surrogate_salt') }}
            when 'outpatient' then
                {{ surrogate_key('appointment', 'new_charges.encounter_id',
                                 'int_surrogate_salt_generated.surrogate_salt') }}
        end as encounter_key,
        new_charges.encounter_type,
        {{ surrogate_key('patient', 'new_charges.mrn', 'int_surrogate_salt_generated.surrogate_salt') }}
            as patient_key,
        new_charges.revenue_code,
        new_charges.service_date,
        new_charges.quantity,
        new_charges.unit_price_usd,
        new_charges.charge_amount_usd as amount_usd,
        new_charges.posted_at,
        new_charges._loaded_at
    from new_charges
    cross join int_surrogate_salt_generated

)

select * from final
