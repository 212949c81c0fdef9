{#-
    Calendar functions whose spelling differs between DuckDB and Snowflake.
      date_spine(start_date, end_date)   a relation with one row per day, column `date_day` (both bounds included)
      days_between(start, end)           whole calendar days from start to end (dates or timestamps)
      iso_day_of_week(expr)              1 = Monday ... 7 = Sunday
-#}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'hospital')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    select cast(generate_series as date) as date_day
    from generate_series(date '{{ start_date }}', date '{{ end_date }}', interval 1 day)
{%- endmacro %}

{% macro snowflake__date_spine(start_date, end_date) -%}
    {%- set days = (modules.datetime.date.fromisoformat(end_date) - modules.datetime.date.fromisoformat(start_date)).days + 1 -%}
    select dateadd(day, row_number() over (order by seq4()) - 1, to_date('{{ start_date }}')) as date_day
    from table(generator(rowcount => {{ days }}))
{%- endmacro %}

{% macro days_between(start, end) -%}
    {{ return(adapter.dispatch('days_between', 'hospital')(start, end)) }}
{%- endmacro %}

{% macro default__days_between(start, end) -%}
    date_diff('day', cast({{ start }} as date), cast({{ end }} as date))
{%- endmacro %}

{% macro snowflake__days_between(start, end) -%}
    datediff(day, cast({{ start }} as date), cast({{ end }} as date))
{%- endmacro %}

{% macro iso_day_of_week(expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'hospital')(expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(expr) -%}
    isodow({{ expr }})
{%- endmacro %}

{% macro snowflake__iso_day_of_week(expr) -%}
    dayofweekiso({{ expr }})
{%- endmacro %}

{#- English weekday name from an ISO day number (portable: DuckDB's dayname and Snowflake's differ). -#}
{% macro weekday_name(iso_day) -%}
    case {{ iso_day }}
        when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday' when 4 then 'Thursday'
        when 5 then 'Friday' when 6 then 'Saturday' when 7 then 'Sunday'
    end
{%- endmacro %}
