{#-
    Daily test scope (docs/dbt.md, "Daily builds"): with `--vars '{tests_loaded_after: "<UTC instant>"}'` the
    data tests of the large models check only the rows loaded after that instant; without it (the default, and
    the weekly full refresh) every test checks every row.

      large staging views  the view's query narrowed to the keys with a row loaded after the instant, with the
                           key filter on raw before the dedupe (macros/staging/scoped.sql), then the records
                           whose latest version was loaded after it;
      incremental tables   their rows with `_loaded_at` after the instant (a filter on a table): the facts,
                           int_claims_pivoted, int_encounters_unioned, int_patients_joined_to_coverage; for a
                           table whose rows depend on a group (int_coverage_periods_sequenced: the patient),
                           every row of the groups with a row loaded after it (what the day's run re-computed);
      everything else      unchanged: small tables, dim_patients (its rows carry no load instant of their own),
                           and the tables rebuilt in full (KPI marts, census, readmissions).

    The test's own `where` config still applies on top. A `relationships` test checks the scoped rows against
    *all* parents, but reads only the parents whose key is among the child's values when the parent is a
    large staging view (that narrowing keeps every parent that could match, so the test's verdict is the same).
-#}

{#- The incremental tables whose tests are limited to the day's rows by `_loaded_at`, each with the column
    that groups the rows re-computed together (none: the row alone). -#}
{% macro tables_scoped_by_loaded_at() -%}
    {{ return({
        'fct_admissions': none,
        'fct_appointments': none,
        'fct_charges': none,
        'fct_claims': none,
        'int_claims_pivoted': none,
        'int_encounters_unioned': none,
        'int_patients_joined_to_coverage': none,
        'int_coverage_periods_sequenced': 'mrn',
    }) }}
{%- endmacro %}

{#- The UTC instant of the daily scope as a SQL timestamp; none when it is not set. From var('tests_loaded_after')
    (a command typed by hand) or else, at execution only, the environment variable DBT_TESTS_LOADED_AFTER (what
    the pipeline sets: flows/transform.py). A var that changes every day makes dbt re-parse the whole project on
    every run (its partial parsing keys on the --vars); an environment variable read only while executing is never
    recorded by the parser, so the daily runs keep partial parsing (docs/dbt.md, "Fixed costs"). -#}
{% macro tests_loaded_after() -%}
    {%- set instant = var('tests_loaded_after', none) -%}
    {%- if not instant and execute -%}
        {%- set instant = env_var('DBT_TESTS_LOADED_AFTER', '') -%}
    {%- endif -%}
    {%- if not instant -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?',
                                    instant | string) -%}
        {{ exceptions.raise_compiler_error(
            "tests_loaded_after = '" ~ instant ~ "' is not a UTC instant: pass it as 'YYYY-MM-DD HH:MM:SS' "
            ~ "(the UTC time just before the day's load started), or leave it out to test every row.") }}
    {%- endif -%}
    {{ return("cast('" ~ instant ~ "' as timestamp)") }}
{%- endmacro %}

{#- dbt's get_where_subquery (what a generic test selects from), with the daily scope applied first. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set instant = tests_loaded_after() -%}
    {%- set scoped = none -%}
    {%- if instant is not none and relation.identifier is defined -%}
        {%- set narrowed = staging_query_in_scope(relation.identifier, keys_loaded_after=instant) -%}
        {%- if narrowed is not none -%}
            {%- set scoped = '(select * from (' ~ narrowed ~ '\n) as in_scope where _loaded_at > ' ~ instant ~ ')' -%}
        {%- elif relation.identifier in tables_scoped_by_loaded_at() -%}
            {%- set group_key = tables_scoped_by_loaded_at()[relation.identifier] -%}
            {%- set loaded = 'select ' ~ (group_key or '*') ~ ' from ' ~ relation ~ ' where _loaded_at > ' ~ instant -%}
            {%- set scoped = '(' ~ loaded ~ ')' if group_key is none else (
                '(select * from ' ~ relation ~ ' where ' ~ group_key ~ ' in (' ~ loaded ~ '))') -%}
        {%- endif -%}
    {%- endif -%}
    {%- if scoped is none and not where -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return('(select * from ' ~ (scoped ~ ' as scoped' if scoped is not none else relation) ~ (
        ' where ' ~ where if where else '') ~ ') dbt_subquery') }}
{%- endmacro %}

{#- dbt's relationships test; under the daily scope a large staging parent is read for the child's keys only. -#}
{% macro default__test_relationships(model, column_name, to, field) %}
{%- set parent_key = scoped_staging_key(to.identifier) if to.identifier is defined else none -%}
{%- set narrowed = none -%}
{%- if tests_loaded_after() is not none and parent_key == field -%}
    {%- set keys_in = 'select ' ~ column_name ~ ' from ' ~ model ~ ' where ' ~ column_name ~ ' is not null' -%}
    {%- set narrowed = staging_query_in_scope(to.identifier, keys_in=keys_in) -%}
{%- endif %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    {%- if narrowed is not none %}
    from (
{{ narrowed }}
    ) as parent_in_scope
    {%- else %}
    from {{ to }}
    {%- endif %}
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
