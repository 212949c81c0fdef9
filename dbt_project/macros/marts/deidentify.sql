{#-
    HIPAA Safe Harbor helpers (45 CFR 164.514(b)(2)), dialect-neutral.

      age_years(birth_date, as_of_date)   completed years of age on as_of_date
      age_band(birth_date, as_of_date)    0-17, 18-44, 45-64, 65-74, 75-84, 85-89, 90+ ('unknown' when the birth
                                          date is missing or after as_of_date). Ages 90 and over are one band and
                                          no birth year is kept anywhere (Safe Harbor (2)(i)(C)).
      zip3_safe_harbor(zip_code, restricted_zip3)
                                          the first three digits of a five-digit ZIP, '000' when those three
                                          digits are a restricted area (the `restricted_zip3` list joined by the
                                          caller as `restricted_zip3`), null when the ZIP is malformed.
-#}
{% macro age_years(birth_date, as_of_date) -%}
    (
        extract(year from {{ as_of_date }}) - extract(year from {{ birth_date }})
        - case
            when extract(month from {{ as_of_date }}) * 100 + extract(day from {{ as_of_date }})
                < extract(month from {{ birth_date }}) * 100 + extract(day from {{ birth_date }})
                then 1
            else 0
        end
    )
{%- endmacro %}

{% macro age_band(birth_date, as_of_date) -%}
    {%- set age = hospital.age_years(birth_date, as_of_date) -%}
    case
        when {{ birth_date }} is null or {{ birth_date }} > {{ as_of_date }} then 'unknown'
        when {{ age }} >= 90 then '90+'
        when {{ age }} >= 85 then '85-89'
        when {{ age }} >= 75 then '75-84'
        when {{ age }} >= 65 then '65-74'
        when {{ age }} >= 45 then '45-64'
        when {{ age }} >= 18 then '18-44'
        else '0-17'
    end
{%- endmacro %}

{% macro age_bands() -%}
    {{ return(['0-17', '18-44', '45-64', '65-74', '75-84', '85-89', '90+', 'unknown']) }}
{%- endmacro %}

{% macro zip3_safe_harbor(zip_code, restricted_zip3) -%}
    case
        when not {{ hospital.regex_full_match(zip_code, '[0-9]{5}') }} then null
        when {{ restricted_zip3 }} is not null then '000'
        else left({{ zip_code }}, 3)
    end
{%- endmacro %}
