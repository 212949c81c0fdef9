{#-
    The incremental models' reads (docs/dbt.md, "Daily builds"): facts, dim_patients and the incremental
    integration tables (hence not in macros/marts).

    staging_rows_since_last_run(model_name): the import CTE body of an incremental model. On a first run or a full
    refresh, the staging view (every record). On an incremental run, only the records whose key has a raw row
    loaded after the fact's own latest `_loaded_at` (the watermark), with the key filter applied to raw *before*
    the staging dedupe (macros/staging/scoped.sql): a daily run reads and deduplicates the day's keys, not all of
    raw. Every version of those keys is read, so each record is its latest version, as in the view; a key whose
    new row is an older version than the one the fact holds is simply rewritten unchanged (delete+insert).

    staging_rows_for_keys(model_name, keys_in): on an incremental run, the staging records of the keys of a
    subquery (e.g. the patients of the day's admissions); otherwise the staging view.

    rows_loaded_since_last_run(relation): on an incremental run, the rows of an incremental upstream *table*
    (e.g. int_claims_pivoted for fct_claims) with `_loaded_at` after the model's own watermark; otherwise all.

    last_run_watermark(watermark_column): the model's latest `_loaded_at` (or another column holding load
    instants): the instant before which it has read everything; an empty table reads everything.
-#}

{% macro last_run_watermark(watermark_column='_loaded_at') -%}
    {#- A unit test renders a model without a relation of its own (and builds the first-run branch). -#}
    {%- if this is none -%}
        {{ return("cast('1900-01-01 00:00:00' as timestamp)") }}
    {%- endif %}
    {%- if execute and is_incremental() %}
        {#- A table built before its model became incremental has no watermark column: without this check the
            query would bind the name to the raw table's column and fail with an unrelated binder error. -#}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- if watermark_column | lower not in columns -%}
            {{ exceptions.raise_compiler_error(
                this ~ " has no " ~ watermark_column ~ " column: it was built before " ~ model.name
                ~ " became incremental. Rebuild it once with a full refresh (hospital run --force --full-refresh,"
                ~ " the weekly-full-refresh deployment, or dbt build --full-refresh); docs/pipeline.md.") }}
        {%- endif -%}
    {%- endif %}
    (select coalesce(max({{ watermark_column }}), cast('1900-01-01 00:00:00' as timestamp)) as loaded_after
     from {{ this }})
{%- endmacro %}

{% macro staging_rows_since_last_run(model_name, watermark_column='_loaded_at') -%}
    {#- Rendered at parse time too, so dbt records the raw source the narrowed query reads. -#}
    {%- set watermark = last_run_watermark(watermark_column) -%}
    {%- set narrowed = staging_query_in_scope(model_name, keys_loaded_after=watermark) -%}
    {%- if is_incremental() %}
    select * from (
{{ narrowed }}
    ) as changed_since_last_run
    {%- else %}
    select * from {{ ref(model_name) }}
    {%- endif -%}
{%- endmacro %}

{% macro staging_rows_for_keys(model_name, keys_in) -%}
    {%- set narrowed = staging_query_in_scope(model_name, keys_in=keys_in) -%}
    {%- if is_incremental() %}
    select * from (
{{ narrowed }}
    ) as in_scope
    {%- else %}
    select * from {{ ref(model_name) }}
    {%- endif -%}
{%- endmacro %}

{% macro rows_loaded_since_last_run(relation) -%}
    select * from {{ relation }}
    {%- if is_incremental() %}
    where _loaded_at > {{ last_run_watermark() }}
    {%- endif -%}
{%- endmacro %}
