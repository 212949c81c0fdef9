-- Readmission pairs: every inpatient admission as a candidate index stay, paired with the same patient's next
-- admission, with the days between the index discharge and the readmission and the 30-day readmission flag.
-- The rules follow CMS's Hospital Readmissions Reduction Program (HRRP) all-cause measure, simplified:
--   * Days are counted on the hospital's local calendar: readmission date minus index discharge date.
--     A readmission on day 30 counts, day 31 does not. A readmission on the day of discharge is day 0 and counts.
--   * A same-day stay (admitted and discharged on one day) is an index stay like any other.
--   * Index stays exclude transfers out to another acute care hospital (UB-04 disposition 02): the episode goes
--     on at the receiving hospital, so the receiving stay is not a readmission; the transfer flag comes from the
--     discharge dispositions list.
--   * Index stays exclude deaths in hospital (disposition 20, "expired"): there can be no readmission.
--   * Index stays exclude stays still open (no discharge yet).
--   * A planned readmission is not counted: an elective admission whose principal diagnosis is Z51.11
--     (encounter for antineoplastic chemotherapy) is scheduled care, not a failure of the index stay.
--   * Only the next admission is paired (admissions ordered by admission instant, then id); a next admission that
--     starts before the index discharge (overlapping records) is not a readmission.
-- Index stays discharged less than 30 days before the data's last day do not have a complete follow-up window yet
-- (`has_complete_follow_up`); the rate over them is provisional.
with

stg_adt__admissions as (

    select * from {{ ref('stg_adt__admissions') }}

),

discharge_dispositions as (

    select * from {{ ref('discharge_dispositions') }}

),

admissions as (

    select
        admission_id,
        mrn,
        hospital_id,
        department_id,
        admission_type,
        principal_diagnosis_code,
        discharge_disposition_code,
        admitted_at,
        discharged_at,
        {{ local_date('admitted_at') }} as admission_date,
        {{ local_date('discharged_at') }} as discharge_date,
        updated_at
    from stg_adt__admissions
    -- A stay without its key or its patient cannot be paired (quality gate's defect).
    where admission_id is not null and mrn is not null

),

data_window as (

    select max({{ local_date('updated_at') }}) as last_data_date
    from admissions

),

sequenced as (

    select
        admissions.*,
        lead(admission_id) over (
            partition by mrn order by admitted_at, admission_id
        ) as next_admission_id,
        lead(admitted_at) over (
            partition by mrn order by admitted_at, admission_id
        ) as next_admitted_at,
        lead(admission_date) over (
            partition by mrn order by admitted_at, admission_id
        ) as next_admission_date,
        lead(admission_type) over (
            partition by mrn order by admitted_at, admission_id
        ) as next_admission_type,
        lead(principal_diagnosis_code) over (
            partition by mrn order by admitted_at, admission_id
        ) as next_principal_diagnosis_code,
        lead(hospital_id) over (
            partition by mrn order by admitted_at, admission_id
        ) as next_hospital_id
    from admissions

),

flagged as (

    select
        sequenced.*,
        coalesce(discharge_dispositions.is_transfer_to_acute_care, false) as is_transfer_out,
        coalesce(discharge_dispositions.is_expired, false) as is_expired,
        {{ dbt.datediff('sequenced.discharge_date', 'sequenced.next_admission_date', 'day') }}
            as days_to_readmission,
        -- Planned readmission: elective admission for chemotherapy (Z51.11); not counted.
        coalesce(
            sequenced.next_admission_type = 'Elective' and sequenced.next_principal_diagnosis_code = 'Z51.11',
            false
        ) as is_planned_readmission,
        data_window.last_data_date
    from sequenced
    left join discharge_dispositions
        on sequenced.discharge_disposition_code = discharge_dispositions.discharge_disposition_code
    cross join data_window

),

final as (

    select
        admission_id as index_admission_id,
        mrn,
        hospital_id as index_hospital_id,
        department_id as index_department_id,
        admitted_at as index_admitted_at,
        discharged_at as index_discharged_at,
        discharge_date as index_discharge_date,
        discharge_disposition_code as index_discharge_disposition_code,
        next_admission_id as readmission_id,
        next_admitted_at as readmitted_at,
        next_admission_date as readmission_date,
        next_hospital_id as readmission_hospital_id,
        days_to_readmission,
        is_transfer_out,
        is_expired,
        is_planned_readmission,
        -- Index eligibility (HRRP-like): discharged alive, not transferred out to acute care, stay closed.
        discharged_at is not null and not is_transfer_out and not is_expired as is_eligible_index,
        -- The 30-day window is complete when the data reaches 30 days past the discharge.
        discharged_at is not null and discharge_date + 30 <= last_data_date as has_complete_follow_up,
        -- Counted: an eligible index, the same patient's next admission 0-30 days after discharge (day 30 counts,
        -- day 31 does not), and not planned.
        coalesce(
            discharged_at is not null
            and not is_transfer_out
            and not is_expired
            and next_admission_id is not null
            and next_admitted_at >= discharged_at
            and days_to_readmission between 0 and 30
            and not is_planned_readmission,
            false
        ) as is_30_day_readmission
    from flagged

)

select * from final
