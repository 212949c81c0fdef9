{#-
    Text functions whose spelling differs between DuckDB and Snowflake.
      collapse_whitespace(expr)   every run of whitespace becomes one space (DuckDB needs the 'g' flag;
                                  Snowflake replaces globally and reads backslashes in literals as escapes)
      title_case(expr)            First Letter Of Each Space-Separated Word upper case, the rest lower case
                                  (Snowflake's initcap with space as the only delimiter; DuckDB has none)
      regex_full_match(expr, pattern)  whether the whole value matches (write patterns without backslashes)
-#}
{% macro collapse_whitespace(expr) -%}
    {{ return(adapter.dispatch('collapse_whitespace', 'hospital')(expr)) }}
{%- endmacro %}

{% macro default__collapse_whitespace(expr) -%}
    regexp_replace({{ expr }}, '\s+', ' ', 'g')
{%- endmacro %}

{% macro snowflake__collapse_whitespace(expr) -%}
    regexp_replace({{ expr }}, '\\s+', ' ')
{%- endmacro %}

{% macro title_case(expr) -%}
    {{ return(adapter.dispatch('title_case', 'hospital')(expr)) }}
{%- endmacro %}

{% macro default__title_case(expr) -%}
    array_to_string(
        list_transform(string_split(lower({{ expr }}), ' '), lambda word: upper(left(word, 1)) || substr(word, 2)),
        ' '
    )
{%- endmacro %}

{% macro snowflake__title_case(expr) -%}
    initcap({{ expr }}, ' ')
{%- endmacro %}

{% macro regex_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regex_full_match', 'hospital')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regex_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{% macro snowflake__regex_full_match(expr, pattern) -%}
    regexp_like({{ expr }}, '{{ pattern }}')
{%- endmacro %}
