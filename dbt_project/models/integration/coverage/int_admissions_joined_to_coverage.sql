-- Each inpatient admission with the coverage in effect on its admission day: the source of the payer mix.
-- Rules (payer mix by primary payer at admission, as hospital finance reports it):
--   * A coverage period is in effect on the local admission date when it began on or before that day and has
--     not ended before it (termination date null or on/after the day; the termination date is the last covered
--     day).
--   * When periods overlap (a plan change recorded before the old plan ends), the one that began last wins:
--     the newest plan is the primary payer.
--   * An admission with no period in effect is self-pay (uninsured patients are billed themselves):
--     payer_type 'self_pay', no payer or plan.
--   * A period whose plan or payer is missing from the payer lists (a defect) gives payer_type 'unknown'.
-- Admissions without an admission_id are left out (not facts); one without an MRN is self-pay (no timeline).
with

stg_adt__admissions as (

    select * from {{ ref('stg_adt__admissions') }}

),

int_coverage_periods_sequenced as (

    select * from {{ ref('int_coverage_periods_sequenced') }}

),

admissions as (

    select
        admission_id,
        mrn,
        hospital_id,
        admitted_at,
        {{ local_date('admitted_at') }} as admission_date
    from stg_adt__admissions
    where admission_id is not null

),

coverage_in_effect as (

    select
        admissions.admission_id,
        int_coverage_periods_sequenced.coverage_id,
        int_coverage_periods_sequenced.plan_id,
        int_coverage_periods_sequenced.payer_id,
        int_coverage_periods_sequenced.payer_type,
        row_number() over (
            partition by admissions.admission_id
            order by int_coverage_periods_sequenced.effective_date desc, int_coverage_periods_sequenced.coverage_id desc
        ) as coverage_rank
    from admissions
    inner join int_coverage_periods_sequenced
        on admissions.mrn = int_coverage_periods_sequenced.mrn
        and int_coverage_periods_sequenced.effective_date <= admissions.admission_date
        and (
            int_coverage_periods_sequenced.termination_date is null
            or int_coverage_periods_sequenced.termination_date >= admissions.admission_date
        )

),

final as (

    select
        admissions.admission_id,
        admissions.mrn,
        admissions.hospital_id,
        admissions.admitted_at,
        admissions.admission_date,
        coverage_in_effect.coverage_id,
        coverage_in_effect.plan_id,
        coverage_in_effect.payer_id,
        case
            when coverage_in_effect.coverage_id is null then 'self_pay'
            else coalesce(coverage_in_effect.payer_type, 'unknown')
        end as payer_type,
        coverage_in_effect.coverage_id is not null as has_coverage
    from admissions
    left join coverage_in_effect
        on admissions.admission_id = coverage_in_effect.admission_id
        and coverage_in_effect.coverage_rank = 1

)

select * from final
