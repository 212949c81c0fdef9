{#- The SQL of stg_registration__patients (the model calls it unscoped); narrowed: macros/staging/scoped.sql. -#}
{% macro stg_registration__patients_query(keys_loaded_after=none, keys_in=none) -%}
-- Registered patients, latest demographics of each (incremental: a move or correction resends the patient).
-- Holds PHI (names, address, phone, e-mail, SSN, birth date): it stays in the PHI zone.
with

source as (

    select * from {{ source('registration', 'patients') }}
    {{ where_key_in_scope('mrn', source('registration', 'patients'), keys_loaded_after, keys_in) }}

),

renamed as (

    select
        {{ clean_text('mrn') }} as mrn,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        -- Administrative sex is F, M or U; the EHR sometimes sends words in capitals (" FEMALE  ").
        -- Anything else is kept as sent (upper case) for the quality gate to report.
        case {{ clean_upper('sex') }}
            when 'FEMALE' then 'F'
            when 'MALE' then 'M'
            when 'UNKNOWN' then 'U'
            else {{ clean_upper('sex') }}
        end as sex,
        birth_date,
        {{ clean_text('address_line') }} as address_line,
        {{ clean_text('city') }} as city,
        {{ clean_upper('state') }} as state_code,
        {{ clean_text('zip') }} as zip_code,
        {{ clean_text('phone') }} as phone,
        {{ clean_lower('email') }} as email,
        {{ clean_text('ssn') }} as ssn,
        {{ clean_text('preferred_language') }} as preferred_language,
        {{ clean_text('home_hospital_id') }} as home_hospital_id,
        {{ utc_timestamp('registered_at') }} as registered_at,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('mrn', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
{%- endmacro %}

{#- The cleaned MRNs of the patients whose age band as of `from_date` differs from the one as of `to_date`
    (SQL date expressions), read from every raw version's birth date: no dedupe, so it may name a patient whose
    latest version did not change band (rewriting it is harmless). What dim_patients rewrites when the data's
    last day moves. -#}
{% macro stg_registration__patients_keys_aging(from_date, to_date) -%}
    select {{ clean_text('mrn') }} as mrn
    from {{ source('registration', 'patients') }}
    where {{ age_band('birth_date', from_date) }} <> {{ age_band('birth_date', to_date) }}
{%- endmacro %}
