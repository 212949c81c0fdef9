-- Departments of each hospital, latest version of each (full roster every batch).
with

source as (

    select * from {{ source('facilities', 'departments') }}

),

renamed as (

    select
        {{ clean_text('department_id') }} as department_id,
        {{ clean_text('hospital_id') }} as hospital_id,
        {{ clean_text('department_name') }} as department_name,
        {{ clean_text('service_line') }} as service_line_name,
        is_inpatient,
        staffed_beds,
        {{ utc_timestamp('updated_at') }} as updated_at,
        {{ audit_columns() }}
    from source

),

latest as (

    select *
    from renamed
    {{ latest_version('department_id', 'updated_at') }}

),

final as (

    select * from latest

)

select * from final
