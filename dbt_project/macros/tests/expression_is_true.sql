{#-
    expression_is_true: a boolean SQL expression holds for every row (use the test's `where` config to
    restrict the rows). On a column, the expression is appended to the column: `column_name >= 0`.
    Rows where the expression is null pass (test nullability with not_null).
-#}
{% test expression_is_true(model, expression, column_name=none) %}
{%- set predicate = (column_name ~ ' ' ~ expression) if column_name is not none else expression -%}
with

failing as (

    select *
    from {{ model }}
    where not ({{ predicate }})

)

select * from failing
{% endtest %}
