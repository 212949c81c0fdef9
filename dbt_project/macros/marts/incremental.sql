{#
    loaded_since_last_run(relation): the where-clause of an incremental fact's new rows.
    On an incremental run, only rows loaded after the fact's own latest `_loaded_at` (the watermark), so a
    daily run costs in proportion to the day's data; on a first run or a full refresh, every row.
#}
{% macro loaded_since_last_run(relation) -%}
    {%- if is_incremental() -%}
        {{ relation }}._loaded_at > (select max(_loaded_at) as loaded_after from {{ this }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
