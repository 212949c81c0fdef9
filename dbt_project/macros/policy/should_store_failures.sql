{#-
    Store-failures policy: failing rows of a test are never stored when the test reads a model, seed or source
    that holds PHI. Overrides dbt's global `should_store_failures()`, which the test materialization and the
    built-in generic tests call, so the policy holds whatever a YAML file or `--store-failures` asks for.

    A node holds PHI unless its config says `meta: {contains_phi: false}` (sources always count as PHI: raw
    tables hold every column the source system sends). A `checks` test stores rule names and counts only, so it is
    stored for every model.
-#}
{% macro should_store_failures() %}
    {%- set configured = config.get('store_failures') -%}
    {%- if configured is none -%}
        {%- set configured = flags.STORE_FAILURES -%}
    {%- endif -%}
    {%- if not configured -%}
        {{ return(false) }}
    {%- endif -%}
    {#- A `checks` test returns rule names and failing-row counts, never a row of the model (macros/tests/checks.sql):
        nothing of a patient to keep out, so it is stored whatever its model holds. -#}
    {%- if model is not none and (model.get('test_metadata') or {}).get('name') == 'checks' -%}
        {{ return(true) }}
    {%- endif -%}
    {{ return(not hospital_test_reads_phi(model)) }}
{% endmacro %}

{% macro hospital_test_reads_phi(test_node) %}
    {%- if not execute or test_node is none -%}
        {#- At parse time the graph is not built yet; nothing is stored at parse time either. -#}
        {{ return(true) }}
    {%- endif -%}
    {%- for unique_id in test_node.depends_on.nodes -%}
        {%- if unique_id.startswith('source.') -%}
            {{ return(true) }}
        {%- endif -%}
        {%- set upstream = graph.nodes.get(unique_id) -%}
        {%- if upstream is none or upstream.config.meta.get('contains_phi', true) is not sameas false -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{% endmacro %}
