-- The secret salt of the marts' keyed surrogate keys (macros/marts/surrogate_key.sql). It lives in the PHI zone
-- (schema integration) with the MRNs it protects, and is generated inside the warehouse on the first build:
-- never in compiled SQL, logs or artifacts. `full_refresh: false` keeps it across `--full-refresh`, so keys stay
-- stable; rotating it (drop the table) re-keys every mart. Tests and local comparisons may pin it with
-- `--vars '{surrogate_salt: ...}'` (then it is in the compiled SQL: never do that with a production salt).
{{
    config(
        materialized='incremental',
        full_refresh=false,
        schema='integration',
        meta={'contains_phi': true, 'layer': 'integration'},
    )
}}

with

generated as (

    select
        {% if var('surrogate_salt', none) is not none -%}
        '{{ var("surrogate_salt") }}'
        {%- else -%}
        {{ random_secret() }}
        {%- endif %} as surrogate_salt

),

final as (

    select * from generated
    {% if is_incremental() -%}
    -- Generated once: later runs add nothing.
    where false
    {%- endif %}

)

select * from final
