-- Payers with the number of plans each offers. Keyed by payer_id.
with

stg_payers__payers as (

    select * from {{ ref('stg_payers__payers') }}

),

stg_payers__plans as (

    select * from {{ ref('stg_payers__plans') }}

),

plans_per_payer as (

    select
        payer_id,
        count(*) as plan_count
    from stg_payers__plans
    group by payer_id

),

final as (

    select
        stg_payers__payers.payer_id,
        stg_payers__payers.payer_name,
        stg_payers__payers.payer_type,
        coalesce(plans_per_payer.plan_count, 0) as plan_count
    from stg_payers__payers
    left join plans_per_payer
        on stg_payers__payers.payer_id = plans_per_payer.payer_id
    where stg_payers__payers.payer_id is not null

)

select * from final
