-- Hospitals of the network (facility data: no PHI). Keyed by the natural hospital_id.
with

stg_facilities__hospitals as (

    select * from {{ ref('stg_facilities__hospitals') }}

),

final as (

    select
        hospital_id,
        hospital_name,
        hospital_type,
        city,
        state_code,
        zip_code,
        staffed_beds,
        opened_date
    from stg_facilities__hospitals
    where hospital_id is not null

)

select * from final
