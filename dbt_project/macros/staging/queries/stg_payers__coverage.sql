{#- The SQL of stg_payers__coverage (the model calls it unscoped); narrowed: macros/staging/scoped.sql. -#}
{% macro stg_payers__coverage_query(keys_loaded_after=none, keys_in=none) -%}
-- Coverage periods of patients, latest version of each (a plan change terminates one row and opens another;
-- the termination arrives as a new version of the old row). Holds PHI (MRN, member id).
with

source as (

    select * from {{ source('payers', 'coverage') }}
    {{ where_key_in_scope('coverage_id', source('payers', 'coverage'), keys_loaded_after, keys_in) }}

),

renamed as (

    select
        {{ clean_text('coverage_id') }} as coverage_id,
        {{ clean_text('mrn') }} as mrn,
        {{ clean_text('plan_id') }} as plan_id,
        {{ clean_text('member_id') }} as member_id,
        effective_date,
        termination_date,
        termination_date is null as is_open,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('coverage_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
{%- endmacro %}
