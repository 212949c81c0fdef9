-- Hospitals of the network, latest version of each (the facilities master resends the full roster every batch).
with

source as (

    select * from {{ source('facilities', 'hospitals') }}

),

renamed as (

    select
        {{ clean_text('hospital_id') }} as hospital_id,
        {{ clean_text('hospital_name') }} as hospital_name,
        {{ clean_lower('hospital_type') }} as hospital_type,
        {{ clean_text('city') }} as city,
        {{ clean_upper('state') }} as state_code,
        {{ clean_text('zip') }} as zip_code,
        staffed_beds,
        opened_date,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('hospital_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
