{#-
    Staging queries that can be narrowed to a set of keys *before* the dedupe window.

    The large staging models (admissions, appointments, charges, claims, patients, coverage) keep their SQL in a
    macro `<model>_query(keys_loaded_after=none, keys_in=none)` (macros/staging/queries/). The model file calls it
    with no argument: the view is the full, always-current staging model. Called with an argument, the same SQL
    keeps only the raw rows whose cleaned key is in the scope (`where_key_in_scope`, in the import CTE), so the
    renaming, casting and `row_number() over (partition by key ...)` run on those rows only: something no
    engine does for a filter on the view's output
    (DuckDB does not push `_loaded_at > x` or `key in (subquery)` through the window: the whole of raw is
    deduplicated first). Every version of a key in scope is kept, so the dedupe picks the same latest row as the
    view does: the narrowed query returns exactly the view's rows for those keys.

      keys_loaded_after  a SQL expression (a UTC timestamp): keys with at least one raw row loaded after it.
                         What an incremental fact reads (its own max(_loaded_at)) and what a daily test checks.
      keys_in            a SQL subquery of keys (e.g. the MRNs of the day's admissions).

    Rows whose key is missing are never in a scope (they are defects for the quality gate, kept by the view).
-#}

{#- The where-clause narrowing a staging model's raw rows to the keys in scope (nothing when unscoped), in the
    import CTE so the renaming, casting and dedupe run on those rows only. A raw row is in scope when its
    *cleaned* key (as staging keys it) is among the scope's cleaned keys. Cleaning every raw key to test that
    costs as much as the view, so the test is split, exactly: a raw key without whitespace is its own cleaned
    form and is compared as is (a plain column in a semi-join: DuckDB prunes row groups with the join filter);
    only raw keys holding whitespace are cleaned and compared. -#}
{% macro where_key_in_scope(key, source_relation, keys_loaded_after=none, keys_in=none) -%}
    {%- if keys_loaded_after is not none -%}
        {%- set scope_keys -%}
            select {{ clean_text(key) }} from {{ source_relation }}
            where {{ utc_timestamp('_loaded_at') }} > {{ keys_loaded_after }}
        {%- endset -%}
    {%- elif keys_in is not none -%}
        {%- set scope_keys = keys_in -%}
    {%- else -%}
        {{ return('') }}
    {%- endif -%}
    -- Narrowed to the keys in scope (every version of them, deduplicated below): macros/staging/scoped.sql.
    where {{ key }} in (
        {{ scope_keys }}
        union all
        select {{ key }} from {{ source_relation }}
        where {{ has_whitespace(key) }}
            and {{ clean_text(key) }} in ({{ scope_keys }})
    )
{%- endmacro %}

{#- True when the text holds a whitespace character that clean_text would trim or collapse (ASCII 9-13, 32). -#}
{% macro has_whitespace(column) -%}
    (
        contains({{ column }}, ' ') or contains({{ column }}, chr(9)) or contains({{ column }}, chr(10))
        or contains({{ column }}, chr(11)) or contains({{ column }}, chr(12)) or contains({{ column }}, chr(13))
    )
{%- endmacro %}

{#- The dedupe key of each large staging model and the macro holding its SQL. -#}
{% macro scoped_staging_models() -%}
    {{ return({
        'stg_adt__admissions': ('admission_id', stg_adt__admissions_query),
        'stg_scheduling__appointments': ('appointment_id', stg_scheduling__appointments_query),
        'stg_billing__charges': ('charge_id', stg_billing__charges_query),
        'stg_claims__claims': ('claim_id', stg_claims__claims_query),
        'stg_registration__patients': ('mrn', stg_registration__patients_query),
        'stg_payers__coverage': ('coverage_id', stg_payers__coverage_query),
    }) }}
{%- endmacro %}

{#- The key a large staging model is deduplicated on; none for the other models. -#}
{% macro scoped_staging_key(model_name) -%}
    {%- set entry = scoped_staging_models().get(model_name) -%}
    {{ return(entry[0] if entry else none) }}
{%- endmacro %}

{#- The narrowed query of one large staging model by its name; none for the other models. -#}
{% macro staging_query_in_scope(model_name, keys_loaded_after=none, keys_in=none) -%}
    {%- set entry = scoped_staging_models().get(model_name) -%}
    {%- if entry is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(entry[1](keys_loaded_after=keys_loaded_after, keys_in=keys_in)) }}
{%- endmacro %}
