{#- The SQL of stg_adt__admissions (the model calls it unscoped); narrowed: macros/staging/scoped.sql. -#}
{% macro stg_adt__admissions_query(keys_loaded_after=none, keys_in=none) -%}
-- Inpatient admissions, latest version of each: sent at admission (no discharge yet), sent again at discharge.
-- Holds PHI. A discharge before the admission is kept as sent: the quality gate reports it.
with

source as (

    select * from {{ source('adt', 'admissions') }}
    {{ where_key_in_scope('admission_id', source('adt', 'admissions'), keys_loaded_after, keys_in) }}

),

renamed as (

    select
        {{ clean_text('admission_id') }} as admission_id,
        {{ clean_text('mrn') }} as mrn,
        {{ clean_text('attending_npi') }} as attending_npi,
        {{ clean_text('hospital_id') }} as hospital_id,
        {{ clean_text('department_id') }} as department_id,
        -- Emergency, Urgent or Elective; sometimes sent in capitals with stray spaces.
        {{ clean_label('admission_type') }} as admission_type,
        {{ utc_timestamp('admit_at') }} as admitted_at,
        {{ utc_timestamp('discharge_at') }} as discharged_at,
        discharge_at is not null as is_discharged,
        {{ clean_upper('principal_dx_code') }} as principal_diagnosis_code,
        -- Secondary diagnoses arrive as one "^"-separated string; the integration layer splits them.
        {{ clean_upper('secondary_dx_codes') }} as secondary_diagnosis_codes,
        -- UB-04 patient discharge status (two digits, e.g. 01 home, 20 expired); null while the stay is open.
        {{ clean_text('discharge_disposition') }} as discharge_disposition_code,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('admission_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
{%- endmacro %}
