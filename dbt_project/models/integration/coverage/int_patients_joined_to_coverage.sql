-- Snapshot source for the patients snapshot: one row per patient with the address and the current coverage
-- (plan, payer, payer type of the latest period of the coverage timeline, and whether it is still open).
-- Joined before snapshotting so that one check-strategy snapshot versions a patient when either the address or
-- the coverage changes (snapshots/registration/_registration__snapshots.yml explains the choice).
-- Patients without an MRN (a defect the quality gate reports) are left out: a snapshot cannot track them.
with

stg_registration__patients as (

    select * from {{ ref('stg_registration__patients') }}

),

int_coverage_periods_sequenced as (

    select * from {{ ref('int_coverage_periods_sequenced') }}

),

patients as (

    select * from stg_registration__patients
    where mrn is not null

),

current_coverage as (

    select
        mrn,
        coverage_id,
        plan_id,
        payer_id,
        payer_type,
        effective_date,
        termination_date,
        is_open
    from int_coverage_periods_sequenced
    where is_latest

),

final as (

    select
        patients.mrn,
        patients.first_name,
        patients.last_name,
        patients.sex,
        patients.birth_date,
        patients.address_line,
        patients.city,
        patients.state_code,
        patients.zip_code,
        patients.home_hospital_id,
        current_coverage.coverage_id as current_coverage_id,
        current_coverage.plan_id as current_plan_id,
        current_coverage.payer_id as current_payer_id,
        current_coverage.payer_type as current_payer_type,
        current_coverage.effective_date as current_coverage_effective_date,
        current_coverage.termination_date as current_coverage_termination_date,
        coalesce(current_coverage.is_open, false) as is_covered,
        patients.updated_at
    from patients
    left join current_coverage
        on patients.mrn = current_coverage.mrn

)

select * from final
