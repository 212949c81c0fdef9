-- Payers (Medicare, Medicaid, commercial insurers, self-pay), latest version of each (full extract).
with

source as (

    select * from {{ source('payers', 'payers') }}

),

renamed as (

    select
        {{ clean_text('payer_id') }} as payer_id,
        {{ clean_text('payer_name') }} as payer_name,
        {{ clean_lower('payer_type') }} as payer_type,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('payer_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
