{#-
    The incremental facts' reads of their large staging models (docs/dbt.md, "Daily builds").

    staging_rows_since_last_run(model_name): the import CTE body of an incremental fact. On a first run or a full
    refresh, the staging view (every record). On an incremental run, only the records whose key has a raw row
    loaded after the fact's own latest `_loaded_at` (the watermark), with the key filter applied to raw *before*
    the staging dedupe (macros/staging/scoped.sql): a daily run reads and deduplicates the day's keys, not all of
    raw. Every version of those keys is read, so each record is its latest version, as in the view; a key whose
    new row is an older version than the one the fact holds is simply rewritten unchanged (delete+insert).

    staging_rows_for_keys(model_name, keys_in): on an incremental run, the staging records of the keys of a
    subquery (e.g. the patients of the day's admissions); otherwise the staging view.
-#}

{% macro staging_rows_since_last_run(model_name) -%}
    {#- Rendered at parse time too, so dbt records the raw source the narrowed query reads. -#}
    {%- set watermark = '(select max(_loaded_at) as loaded_after from ' ~ this ~ ')' -%}
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
