{#-
    Unnesting a JSON array column (the claims status history) into one row per element, per dialect.
    DuckDB stores the history as JSON: `unnest(json_extract(col, '$[*]'))`; Snowflake as VARIANT: `lateral flatten`.

      from claims {{ json_array_unnest('claims.status_history', 'status_events') }}
      select {{ json_unnested_text('status_events', 'status') }} ...

    json_array_unnest(column, alias)   the join clause (one row per element; an empty array gives no rows)
    json_unnested_text(alias, key)     text of `key` of the current element (null when absent)
-#}
{% macro json_array_unnest(column, alias) -%}
    {{ return(adapter.dispatch('json_array_unnest', 'hospital')(column, alias)) }}
{%- endmacro %}

{% macro default__json_array_unnest(column, alias) -%}
    cross join unnest(json_extract({{ column }}, '$[*]')) as {{ alias }}(element)
{%- endmacro %}

{% macro snowflake__json_array_unnest(column, alias) -%}
    , lateral flatten(input => {{ column }}) as {{ alias }}
{%- endmacro %}

{% macro json_unnested_text(alias, key) -%}
    {{ return(adapter.dispatch('json_unnested_text', 'hospital')(alias, key)) }}
{%- endmacro %}

{% macro default__json_unnested_text(alias, key) -%}
    json_extract_string({{ alias }}.element, '$.{{ key }}')
{%- endmacro %}

{% macro snowflake__json_unnested_text(alias, key) -%}
    {{ alias }}.value:{{ key }}::varchar
{%- endmacro %}
