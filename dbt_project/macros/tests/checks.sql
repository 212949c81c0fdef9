{#-
    checks: a model's column rules in one data test, one query (docs/dbt.md, "Tests").

    dbt pays a fixed cost for every test node (render, compile, write, run, report: ~0.04 s of CPU under one
    interpreter lock), whatever the data; with one node per column rule a daily build spent most of its time on
    ~540 tests of a few rows each. A `checks` test runs all the rules of a model (of one severity) in one query:
    one scan of the model computes every row-wise rule, and each `relationships` rule adds one anti-join.

      - checks:
          name: checks_<model>                       # defect_checks_<model> for the `warn` group
          arguments:
            rules:
              - not_null: [charge_id, mrn]           # a column or a list of columns
              - unique: charge_id                    # failing rows = rows beyond the first of each value
              - accepted_values: encounter_type
                values: [inpatient, outpatient]      # quote: false for numbers
              - accepted_range: quantity
                min_value: 1                         # and/or max_value (SQL expressions); inclusive: false
              - matches_pattern: npi
                pattern: '[0-9]{10}'
              - not_null_where: discharge_disposition
                condition: "status = 'discharged'"
              - expression_is_true: "discharged_at >= admitted_at"   # rows where it is null pass
              - relationships: mrn
                to: ref('stg_registration__patients')
                field: mrn

    Every rule may add `where:` (a SQL condition on the model's rows) and `name:` (how failures name it; by
    default `kind(column)`, e.g. `not_null(mrn)`). Each rule keeps the semantics of the
    one-rule generic test of the same name (macros/tests/*.sql, dbt's built-ins): the verdict is the same; the
    failure count is rows (not distinct values, for unique and accepted_values).

    The test returns one row per failing rule: `rule_name` (e.g. `not_null(mrn)`), `failing_rows`. dbt's count is the
    sum of failing rows. Those rows hold rule names and counts only, never a value, so they are stored in
    `test_failures` while the test fails, whatever the model holds (macros/policy/should_store_failures.sql), and
    the pipeline names the failing rules from them (flows/dbt_runner.py).

    Under the daily scope `model` is already narrowed to the day's rows (macros/tests/daily_scope.sql,
    get_where_subquery); a relationships rule checks them against all parents, reading a large staging parent for
    the child's keys only, as dbt's relationships test does here.
-#}
{% test checks(model, rules) %}
{{ config(fail_calc='coalesce(sum(failing_rows), 0)') }}
{%- set kinds = ['not_null', 'unique', 'accepted_values', 'accepted_range', 'matches_pattern', 'not_null_where',
                 'expression_is_true', 'relationships'] -%}
{%- set aggregates = [] -%}
{%- set anti_joins = [] -%}
{%- for rule in rules -%}
    {%- set found = [] -%}
    {%- for key in rule if key in kinds -%}{%- do found.append(key) -%}{%- endfor -%}
    {%- if found | length != 1 -%}
        {{ exceptions.raise_compiler_error("checks on " ~ model ~ ": rule " ~ rule ~ " must name exactly one of "
            ~ kinds | join(', ')) }}
    {%- endif -%}
    {%- set kind = found[0] -%}
    {%- set subject = rule[kind] -%}
    {%- set where = rule.get('where') -%}
    {%- set scope = '(' ~ where ~ ') and ' if where else '' -%}
    {%- set label = rule.get('name') -%}
    {%- for column in (subject if subject is not string else [subject]) if kind == 'not_null' -%}
        {%- do aggregates.append((label or 'not_null(' ~ column ~ ')',
            'count(case when ' ~ scope ~ column ~ ' is null then 1 end)')) -%}
    {%- endfor -%}
    {%- if kind == 'unique' -%}
        {%- set kept = 'case when ' ~ where ~ ' then ' ~ subject ~ ' end' if where else subject -%}
        {%- do aggregates.append((label or 'unique(' ~ subject ~ ')',
            'count(' ~ kept ~ ') - count(distinct ' ~ kept ~ ')')) -%}
    {%- elif kind == 'accepted_values' -%}
        {%- set quote = rule.get('quote', true) -%}
        {%- set listed = [] -%}
        {%- for value in rule['values'] -%}
            {%- do listed.append("'" ~ value ~ "'" if quote else value | string) -%}
        {%- endfor -%}
        {%- do aggregates.append((label or 'accepted_values(' ~ subject ~ ')',
            'count(case when ' ~ scope ~ subject ~ ' not in (' ~ listed | join(', ') ~ ') then 1 end)')) -%}
    {%- elif kind == 'accepted_range' -%}
        {%- set low = rule.get('min_value') -%}
        {%- set high = rule.get('max_value') -%}
        {%- if low is none and high is none -%}
            {{ exceptions.raise_compiler_error("checks on " ~ model ~ ": accepted_range of " ~ subject
                ~ " needs min_value or max_value") }}
        {%- endif -%}
        {%- set strict = rule.get('inclusive', true) is sameas false -%}
        {%- set bounds = [] -%}
        {%- if low is not none -%}{%- do bounds.append(subject ~ (' > ' if strict else ' >= ') ~ low) -%}{%- endif -%}
        {%- if high is not none -%}{%- do bounds.append(subject ~ (' < ' if strict else ' <= ') ~ high) -%}{%- endif -%}
        {%- do aggregates.append((label or 'accepted_range(' ~ subject ~ ')',
            'count(case when ' ~ scope ~ subject ~ ' is not null and not (' ~ bounds | join(' and ') ~ ') then 1 end)')) -%}
    {%- elif kind == 'matches_pattern' -%}
        {%- do aggregates.append((label or 'matches_pattern(' ~ subject ~ ')',
            'count(case when ' ~ scope ~ subject ~ ' is not null and not '
            ~ hospital.regex_full_match(subject, rule['pattern']) ~ ' then 1 end)')) -%}
    {%- elif kind == 'not_null_where' -%}
        {%- do aggregates.append((label or 'not_null_where(' ~ subject ~ ')',
            'count(case when ' ~ scope ~ '(' ~ rule['condition'] ~ ') and ' ~ subject ~ ' is null then 1 end)')) -%}
    {%- elif kind == 'expression_is_true' -%}
        {%- do aggregates.append((label or 'expression_is_true(' ~ subject ~ ')',
            'count(case when ' ~ scope ~ 'not (' ~ subject ~ ') then 1 end)')) -%}
    {%- elif kind == 'relationships' -%}
        {%- set to = rule['to'] -%}
        {%- set field = rule['field'] -%}
        {%- set parent_key = scoped_staging_key(to.identifier) if to.identifier is defined else none -%}
        {%- set parent = to -%}
        {%- if tests_loaded_after() is not none and parent_key == field -%}
            {%- set keys_in = 'select ' ~ subject ~ ' from in_model where ' ~ scope ~ subject ~ ' is not null' -%}
            {%- set narrowed = staging_query_in_scope(to.identifier, keys_in=keys_in) -%}
            {%- if narrowed is not none -%}
                {%- set parent = '(\n' ~ narrowed ~ '\n    ) as parent_in_scope' -%}
            {%- endif -%}
        {%- endif -%}
        {%- do anti_joins.append((label or 'relationships(' ~ subject ~ ' -> ' ~ (to.identifier if to.identifier is defined
            else to) ~ '.' ~ field ~ ')', subject, field, parent, scope)) -%}
    {%- endif -%}
{%- endfor %}

with

in_model as (

    select * from {{ model }}

),

{% if aggregates -%}
row_rules as (

    select
        {%- for name, expression in aggregates %}
        {{ expression }} as rule_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
    from in_model

),
{% endif -%}

{%- for name, column, field, parent, scope in anti_joins %}
relationship_{{ loop.index }} as (

    select count(*) as failing_rows
    from (
        select {{ column }} as from_field
        from in_model
        where {{ scope }}{{ column }} is not null
    ) as child
    left join (
        select {{ field }} as to_field
        from {{ parent }}
    ) as parent
        on child.from_field = parent.to_field
    where parent.to_field is null

),
{% endfor %}

results as (

    {%- for name, expression in aggregates %}
    select '{{ name | replace("'", "''") }}' as rule_name, rule_{{ loop.index }} as failing_rows from row_rules
    union all
    {%- endfor %}
    {%- for name, column, field, parent, scope in anti_joins %}
    select '{{ name | replace("'", "''") }}' as rule_name, failing_rows from relationship_{{ loop.index }}
    union all
    {%- endfor %}
    select cast(null as {{ dbt.type_string() }}) as rule_name, 0 as failing_rows

)

select rule_name, failing_rows
from results
where failing_rows > 0
{% endtest %}
