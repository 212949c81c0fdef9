{#-
    Calendar helpers for the KPI rules, per dialect.

    local_date(column)  the hospital's calendar date of a UTC instant (staging keeps instants in UTC without
                        time zone). Clinical day counts (readmission windows, midnight census) are on the
                        hospital's local calendar, as the generator and CMS count them, not on UTC dates.
                        The zone is `var('hospital_timezone')`, default America/Chicago (the landing registry's
                        timezone, flows/sources.yml).
    date_series(bounds, start_column, end_column, column)
                        a select of one row per day, named `column`, from `start_column` to `end_column`
                        (inclusive) of the one-row relation or CTE `bounds`.
-#}
{% macro local_date(column) -%}
    {{ return(adapter.dispatch('local_date', 'hospital')(column)) }}
{%- endmacro %}

{% macro default__local_date(column) -%}
    cast(timezone('{{ var("hospital_timezone", "America/Chicago") }}', timezone('UTC', {{ column }})) as date)
{%- endmacro %}

{% macro snowflake__local_date(column) -%}
    cast(convert_timezone('UTC', '{{ var("hospital_timezone", "America/Chicago") }}', {{ column }}) as date)
{%- endmacro %}

{% macro date_series(bounds, start_column, end_column, column) -%}
    {{ return(adapter.dispatch('date_series', 'hospital')(bounds, start_column, end_column, column)) }}
{%- endmacro %}

{% macro default__date_series(bounds, start_column, end_column, column) -%}
    select cast(unnest(generate_series({{ start_column }}, {{ end_column }}, interval 1 day)) as date) as {{ column }}
    from {{ bounds }}
{%- endmacro %}

{% macro snowflake__date_series(bounds, start_column, end_column, column) -%}
    select dateadd(day, offsets.value::int, {{ bounds }}.{{ start_column }})::date as {{ column }}
    from {{ bounds }},
        lateral flatten(
            input => array_generate_range(0, datediff(day, {{ bounds }}.{{ start_column }}, {{ bounds }}.{{ end_column }}) + 1)
        ) as offsets
{%- endmacro %}
