{#-
    utc_timestamp(column): an instant as a UTC timestamp without time zone.

    The loader stores every instant as a UTC TIMESTAMPTZ (DuckDB) / TIMESTAMP_TZ (Snowflake). Staging turns
    them into naive UTC timestamps so that `cast(x as date)` and date arithmetic downstream never depend on
    the session's time zone. Columns named `<event>_at` are UTC.
-#}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'hospital')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
    cast({{ column }} as timestamp)
{%- endmacro %}

{% macro duckdb__utc_timestamp(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}

{% macro snowflake__utc_timestamp(column) -%}
    convert_timezone('UTC', {{ column }})::timestamp_ntz
{%- endmacro %}
