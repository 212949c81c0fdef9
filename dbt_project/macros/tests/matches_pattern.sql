{#-
    matches_pattern: every non-null value matches the regular expression as a whole (e.g. NPI `[0-9]{10}`).
    Write patterns without backslashes (`[.]`, `[0-9]`): the literal is read differently by each dialect.
-#}
{% test matches_pattern(model, column_name, pattern) %}
with

failing as (

    select *
    from {{ model }}
    where {{ column_name }} is not null and not {{ hospital.regex_full_match(column_name, pattern) }}

)

select * from failing
{% endtest %}
