-- Clinic appointments. Grain: one row per appointment. Incremental: a run reads only the staging rows loaded
-- since the last run (watermark on _loaded_at) and replaces those appointments (delete+insert on
-- appointment_key), so an outcome or cancellation arriving in a daily batch replaces the booked row.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='appointment_key',
        on_schema_change='fail',
    )
}}

with

stg_scheduling__appointments as (

    -- Incremental run: only the records with a row loaded since the last run, deduplicated after the key filter.
    {{ staging_rows_since_last_run('stg_scheduling__appointments') }}

),

stg_facilities__departments as (

    select * from {{ ref('stg_facilities__departments') }}

),

int_surrogate_salt_generated as (

    select * from {{ ref('int_surrogate_salt_generated') }}

),

new_appointments as (

    select stg_scheduling__appointments.*
    from stg_scheduling__appointments
    -- A row without an appointment_id is a defect for the quality gate, not an appointment.
    where stg_scheduling__appointments.appointment_id is not null

),

final as (

    select
        {{ surrogate_key('appointment', 'new_appointments.appointment_id',
                         'int_surrogate_salt_generated.surrogate_salt') }} as appointment_key,
        {{ surrogate_key('patient', 'new_appointments.mrn', 'int_surrogate_salt_generated.surrogate_salt') }}
            as patient_key,
        new_appointments.npi,
        new_appointments.department_id,
        stg_facilities__departments.hospital_id,
        new_appointments.booked_at,
        new_appointments.scheduled_at,
        cast(new_appointments.booked_at as date) as booked_date,
        cast(new_appointments.scheduled_at as date) as scheduled_date,
        new_appointments.duration_minutes,
        new_appointments.appointment_status,
        -- Lead time: calendar days from booking to the visit (negative only on the booked-after-visit defect).
        {{ days_between('new_appointments.booked_at', 'new_appointments.scheduled_at') }} as lead_time_days,
        new_appointments.appointment_status = 'No Show' as is_no_show,
        cast({{ iso_day_of_week('cast(new_appointments.scheduled_at as date)') }} as integer)
            as scheduled_iso_day_of_week,
        {{ weekday_name(iso_day_of_week('cast(new_appointments.scheduled_at as date)')) }} as scheduled_weekday_name,
        new_appointments._loaded_at
    from new_appointments
    cross join int_surrogate_salt_generated
    left join stg_facilities__departments
        on new_appointments.department_id = stg_facilities__departments.department_id

)

select * from final
