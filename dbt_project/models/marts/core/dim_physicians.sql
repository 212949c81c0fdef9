-- Physicians. Keyed by the NPI: it identifies a provider, not a patient, is public (CMS NPPES) and is what
-- joins to CMS provider data, so Safe Harbor does not ask to remove it. The physician's name is not needed by
-- any mart and is left out (data minimisation).
with

stg_provider_registry__physicians as (

    select * from {{ ref('stg_provider_registry__physicians') }}

),

specialties as (

    select * from {{ ref('specialties') }}

),

final as (

    select
        stg_provider_registry__physicians.npi,
        stg_provider_registry__physicians.specialty_name,
        specialties.service_line_name,
        stg_provider_registry__physicians.department_id,
        stg_provider_registry__physicians.hospital_id,
        stg_provider_registry__physicians.hire_date,
        stg_provider_registry__physicians.termination_date,
        stg_provider_registry__physicians.is_active
    from stg_provider_registry__physicians
    left join specialties
        on stg_provider_registry__physicians.specialty_name = specialties.specialty_name
    where stg_provider_registry__physicians.npi is not null

)

select * from final
