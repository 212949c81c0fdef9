{#-
    not_null_where: the column is not null on the rows where `condition` holds, e.g. a discharged stay has a
    discharge disposition.
-#}
{% test not_null_where(model, column_name, condition) %}
with

failing as (

    select *
    from {{ model }}
    where ({{ condition }}) and {{ column_name }} is null

)

select * from failing
{% endtest %}
