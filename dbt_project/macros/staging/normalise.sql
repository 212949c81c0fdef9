{#-
    Normalisation used by every staging model. Dialect-neutral: built on the dispatch macros in dialect/.
-#}

{#- Trimmed text with inner whitespace runs collapsed; empty becomes null (an empty key is a missing key). -#}
{% macro clean_text(column) -%}
    nullif(trim({{ collapse_whitespace(column) }}), '')
{%- endmacro %}

{#- A label from a fixed vocabulary ("Emergency", "No Show", specialties): clean text in title case, so
    `" NO SHOW  "` and `"no show"` both read "No Show". Values outside the vocabulary stay visible. -#}
{% macro clean_label(column) -%}
    {{ title_case(clean_text(column)) }}
{%- endmacro %}

{#- A lower-case code ("paid", "inpatient", "commercial"). -#}
{% macro clean_lower(column) -%}
    lower({{ clean_text(column) }})
{%- endmacro %}

{#- An upper-case code (state, sex). -#}
{% macro clean_upper(column) -%}
    upper({{ clean_text(column) }})
{%- endmacro %}

{#-
    latest_version(key, version_at): keep the latest delivered version of each record.

    A record may arrive several times (incremental sources resend changed records with a newer `updated_at`,
    full-delivery sources resend the whole roster, a duplicate row may be sent twice). The latest version is the
    one with the newest version timestamp; ties go to the later load, then the later row of the file.
    Rows whose key is missing are all kept: a missing key is a defect for the quality gate to report, and
    collapsing them into one row would hide how many there are.
-#}
{% macro latest_version(key, version_at) -%}
    qualify
        {{ key }} is null
        or row_number() over (
            partition by {{ key }}
            order by {{ version_at }} desc, _loaded_at desc, _batch_id desc, _row_number desc
        ) = 1
{%- endmacro %}

{#- The audit columns every staging model keeps, so a row can be traced to its file and line. -#}
{% macro audit_columns() -%}
        _batch_id,
        _source_file,
        _row_number,
        {{ utc_timestamp('_loaded_at') }} as _loaded_at
{%- endmacro %}
