{#-
    JSON access for the claims status history. DuckDB stores it as JSON, Snowflake as VARIANT.
      json_array_length(column)              number of elements of a JSON array
      json_element_text(column, index, key)  text of `key` of the array element at `index`
                                             (0-based; a negative index counts from the end, -1 = last)
-#}
{% macro json_array_length(column) -%}
    {{ return(adapter.dispatch('json_array_length', 'hospital')(column)) }}
{%- endmacro %}

{% macro default__json_array_length(column) -%}
    json_array_length({{ column }})
{%- endmacro %}

{% macro snowflake__json_array_length(column) -%}
    array_size({{ column }})
{%- endmacro %}

{% macro json_element_text(column, index, key) -%}
    {{ return(adapter.dispatch('json_element_text', 'hospital')(column, index, key)) }}
{%- endmacro %}

{% macro default__json_element_text(column, index, key) -%}
    {%- set position = '#' ~ index if index < 0 else index -%}
    json_extract_string({{ column }}, '$[{{ position }}].{{ key }}')
{%- endmacro %}

{% macro snowflake__json_element_text(column, index, key) -%}
    {%- if index < 0 -%}
    {#- The explicit integer cast is a no-op on Snowflake; fakesnow needs it (its array_size is unsigned). #}
    get({{ column }}, (array_size({{ column }}) {{ index }})::integer):{{ key }}::varchar
    {%- else -%}
    get({{ column }}, {{ index }}):{{ key }}::varchar
    {%- endif -%}
{%- endmacro %}
