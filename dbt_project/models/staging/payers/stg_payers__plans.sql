-- Health plans of each payer, latest version of each (full extract).
with

source as (

    select * from {{ source('payers', 'plans') }}

),

renamed as (

    select
        {{ clean_text('plan_id') }} as plan_id,
        {{ clean_text('payer_id') }} as payer_id,
        {{ clean_text('plan_name') }} as plan_name,
        {{ clean_text('product_type') }} as product_type,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('plan_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
