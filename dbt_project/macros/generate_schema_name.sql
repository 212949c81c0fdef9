{#-
    Schemas are named for their layer (`staging`, `lists`, later `integration`, `marts`, `snapshots`),
    not prefixed with the target schema: the Snowflake roles grant on these names (deployments/snowflake).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
