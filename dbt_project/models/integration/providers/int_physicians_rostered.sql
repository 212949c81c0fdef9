-- Snapshot source for the physicians snapshot: the physicians on the provider registry's latest roster.
-- The registry resends its full roster every batch; staging keeps a physician who vanished from the roster at
-- his last version (docs/dbt.md). Here only the physicians of the latest delivered roster remain, so a physician
-- removed from the registry disappears from this model and the snapshot invalidates him (hard deletes).
-- A departure is not a deletion: a departed physician stays on the roster with a termination date.
with

stg_provider_registry__physicians as (

    select * from {{ ref('stg_provider_registry__physicians') }}

),

latest_roster as (

    -- The batch of the latest roster: the last loaded batch that delivered physicians. The loader skips a roster
    -- identical to one already loaded (same sha256, docs/loading.md), so the last loaded roster is the current one.
    select _batch_id
    from stg_provider_registry__physicians
    order by _loaded_at desc, _batch_id desc
    limit 1

),

final as (

    select
        stg_provider_registry__physicians.npi,
        stg_provider_registry__physicians.first_name,
        stg_provider_registry__physicians.last_name,
        stg_provider_registry__physicians.specialty_name,
        stg_provider_registry__physicians.department_id,
        stg_provider_registry__physicians.hospital_id,
        stg_provider_registry__physicians.hire_date,
        stg_provider_registry__physicians.termination_date,
        stg_provider_registry__physicians.is_active,
        stg_provider_registry__physicians.updated_at,
        stg_provider_registry__physicians._batch_id
    from stg_provider_registry__physicians
    inner join latest_roster
        on stg_provider_registry__physicians._batch_id = latest_roster._batch_id
    where stg_provider_registry__physicians.npi is not null

)

select * from final
