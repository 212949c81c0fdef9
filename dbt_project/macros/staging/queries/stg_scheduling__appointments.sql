{#- The SQL of stg_scheduling__appointments (the model calls it unscoped); narrowed: macros/staging/scoped.sql. -#}
{% macro stg_scheduling__appointments_query(keys_loaded_after=none, keys_in=none) -%}
-- Clinic appointments, latest version of each: booked, then resent with their outcome. Holds PHI.
with

source as (

    select * from {{ source('scheduling', 'appointments') }}
    {{ where_key_in_scope('appointment_id', source('scheduling', 'appointments'), keys_loaded_after, keys_in) }}

),

renamed as (

    select
        {{ clean_text('appointment_id') }} as appointment_id,
        {{ clean_text('mrn') }} as mrn,
        {{ clean_text('npi') }} as npi,
        {{ clean_text('department_id') }} as department_id,
        {{ utc_timestamp('booked_at') }} as booked_at,
        {{ utc_timestamp('scheduled_at') }} as scheduled_at,
        duration_minutes,
        -- Scheduled, Completed, Cancelled or No Show; sometimes sent in capitals with stray spaces.
        {{ clean_label('status') }} as appointment_status,
        {{ clean_text('reason') }} as visit_reason,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('appointment_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
{%- endmacro %}
