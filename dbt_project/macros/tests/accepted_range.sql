{#-
    accepted_range: every non-null value lies within [min_value, max_value] (either bound optional;
    `inclusive: false` makes both bounds strict). Bounds are SQL expressions, e.g. `current_date`.
    Fails with the rows outside the range.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- if min_value is none and max_value is none -%}
    {{ exceptions.raise_compiler_error("accepted_range on " ~ model ~ "." ~ column_name ~ ": give min_value or max_value") }}
{%- endif -%}
{%- set lower = '>=' if inclusive else '>' -%}
{%- set upper = '<=' if inclusive else '<' -%}
with

validation as (

    select *
    from {{ model }}
    where {{ column_name }} is not null

),

out_of_range as (

    select *
    from validation
    where
        false
        {%- if min_value is not none %}
        or not ({{ column_name }} {{ lower }} {{ min_value }})
        {%- endif %}
        {%- if max_value is not none %}
        or not ({{ column_name }} {{ upper }} {{ max_value }})
        {%- endif %}

)

select * from out_of_range
{% endtest %}
