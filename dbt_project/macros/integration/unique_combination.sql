{#-
    unique_combination: the combination of `columns` is unique (a composite primary key, e.g. department and
    day of the census). Rows where any of the columns is null are not compared (test those with not_null).
    Fails with one row per duplicated combination and its count.
-#}
{% test unique_combination(model, columns) %}
with

duplicated as (

    select
        {{ columns | join(', ') }},
        count(*) as row_count
    from {{ model }}
    where {% for column in columns %}{{ column }} is not null{% if not loop.last %} and {% endif %}{% endfor %}
    group by {{ columns | join(', ') }}
    having count(*) > 1

)

select * from duplicated
{% endtest %}
