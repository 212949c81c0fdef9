{#-
    Keyed surrogate keys for the de-identified marts (docs/dbt.md, "Marts").

      surrogate_key(entity, natural_key, salt)  hex SHA-256 of  salt || '|' || entity || '|' || natural_key
      random_secret()                           a fresh random secret generated inside the warehouse

    A hash of an MRN alone is re-identifiable by anyone holding the MRN list, so every key is keyed with a secret
    salt. The salt is a row of `int_surrogate_salt_generated` in the PHI zone (schema `integration`), generated
    in the warehouse on first build: it never appears in compiled SQL, dbt logs or artifacts.
-#}
{% macro surrogate_key(entity, natural_key, salt) -%}
    {{ return(adapter.dispatch('surrogate_key', 'hospital')(entity, natural_key, salt)) }}
{%- endmacro %}

{% macro default__surrogate_key(entity, natural_key, salt) -%}
    case when {{ natural_key }} is not null
        then sha256({{ salt }} || '|{{ entity }}|' || {{ natural_key }})
    end
{%- endmacro %}

{% macro snowflake__surrogate_key(entity, natural_key, salt) -%}
    case when {{ natural_key }} is not null
        then sha2({{ salt }} || '|{{ entity }}|' || {{ natural_key }}, 256)
    end
{%- endmacro %}

{% macro random_secret() -%}
    {{ return(adapter.dispatch('random_secret', 'hospital')()) }}
{%- endmacro %}

{% macro default__random_secret() -%}
    cast(gen_random_uuid() as varchar) || cast(gen_random_uuid() as varchar)
{%- endmacro %}

{% macro snowflake__random_secret() -%}
    uuid_string() || uuid_string()
{%- endmacro %}
