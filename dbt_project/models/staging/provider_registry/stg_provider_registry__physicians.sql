-- Credentialed physicians, latest version of each (full roster every batch; departed physicians stay on it
-- with their termination date). The NPI is the natural key; its check digit is the quality gate's to verify.
with

source as (

    select * from {{ source('provider_registry', 'physicians') }}

),

renamed as (

    select
        {{ clean_text('npi') }} as npi,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        -- The registry sometimes sends a specialty in capitals with stray spaces (" CARDIOLOGY  ").
        {{ clean_label('specialty') }} as specialty_name,
        {{ clean_text('department_id') }} as department_id,
        {{ clean_text('hospital_id') }} as hospital_id,
        hire_date,
        termination_date,
        termination_date is null as is_active,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('npi', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
