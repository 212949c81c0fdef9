{#-
    dbt's test materialization (dbt-core 1.11, global_project/macros/materializations/tests/test.sql) with one
    change: failing rows are stored only while a test finds some (docs/dbt.md, "Fixed costs").

    dbt's own version, for every test that stores failures (about 300 here: the tests of models without PHI,
    macros/policy/should_store_failures.sql), drops the test's table in `test_failures` and re-creates it from the
    test query on every build, then counts its rows: ~300 DDL statements and commits a build, almost all of empty
    tables. Here the test query is counted first, as for a test that stores nothing; only when the test warns or
    fails is its table re-created with the failing rows (the query runs a second time, for failing tests only).
    A test that passes drops the table a previous failure left, so `test_failures` holds exactly the failures of
    the last build that ran each test. The result dbt reports (failures, warn, error) is the same either way.

    Snowflake: dbt-snowflake's `test` materialization calls `materialization_test_default()`, which resolves to
    this one (the root project's macros come first).

    A failing `checks` test (macros/tests/checks.sql) also logs its failing rules with their counts.
-#}
{%- materialization test, default -%}

  {% set relations = [] %}
  {% set limit = config.get('limit') %}
  {% set sql_header = config.get('sql_header') if flags.REQUIRE_SQL_HEADER_IN_TEST_CONFIGS else none %}
  {% set fail_calc = config.get('fail_calc') %}
  {% set warn_if = config.get('warn_if') %}
  {% set error_if = config.get('error_if') %}

  {% set sql_with_limit %}
    {{ get_limit_subquery_sql(sql, limit) }}
  {% endset %}

  {% call statement('main', fetch_result=True) -%}
    {% if sql_header %}{{ sql_header }}{% endif %}
    {{ get_test_sql(sql_with_limit, fail_calc, warn_if, error_if, limit=none) }}
  {%- endcall %}

  {% set outcome = load_result('main')['table'].rows[0] %}
  {% if (outcome['should_warn'] or outcome['should_error']) and (model.get('test_metadata') or {}).get('name') == 'checks' %}
    {#- Which rules failed, by name and count (never a value): in dbt's log, the node's task run and the stage's
        error (flows/dbt_runner.py reads this line). The test query runs once more, for a failing test only. -#}
    {% set failing = run_query(sql) %}
    {% set named = [] %}
    {% for row in failing.rows %}{% do named.append(row[0] ~ ' ' ~ row[1] ~ ' rows') %}{% endfor %}
    {{ log('failing rules of ' ~ model['name'] ~ ': ' ~ named | join('; '), info=True) }}
  {% endif %}

  {% if should_store_failures() %}
    {% set identifier = model['alias'] %}
    {% set old_relation = adapter.get_relation(database=database, schema=schema, identifier=identifier) %}
    {% if old_relation %}
      {% do adapter.drop_relation(old_relation) %}
    {% endif %}

    {% if outcome['should_warn'] or outcome['should_error'] %}
      {% set store_failures_as = config.get('store_failures_as') %}
      {% if store_failures_as == none %}{% set store_failures_as = 'table' %}{% endif %}
      {% if store_failures_as not in ['table', 'view'] %}
        {{ exceptions.raise_compiler_error(
            "'" ~ store_failures_as ~ "' is not a valid value for `store_failures_as`. "
            "Accepted values are: ['ephemeral', 'table', 'view']"
        ) }}
      {% endif %}
      {% set target_relation = api.Relation.create(
          identifier=identifier, schema=schema, database=database, type=store_failures_as) -%}
      {% call statement(auto_begin=True) %}
        {% if sql_header %}{{ sql_header }}{% endif %}
        {{ get_create_sql(target_relation, sql_with_limit) }}
      {% endcall %}
      {% do relations.append(target_relation) %}
    {% endif %}
    {% if old_relation or relations %}
      {#- The main query opened a transaction; dbt rolls back what a test leaves uncommitted. -#}
      {{ adapter.commit() }}
    {% endif %}
  {% endif %}

  {{ return({'relations': relations}) }}

{%- endmaterialization -%}
