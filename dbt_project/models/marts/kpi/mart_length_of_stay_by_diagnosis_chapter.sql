-- Length of stay per ICD-10-CM chapter of the principal diagnosis. Grain: one row per chapter over every
-- discharged stay of the data. The chapter is the one whose code range holds the principal diagnosis' category
-- (fct_admissions). Nights as in mart_length_of_stay_by_department (local dates; same-day stay = 0; open stays
-- left out). Stays whose code is missing or matches no chapter (a defect) are kept in one row with a null chapter
-- number titled 'Unclassified', so the discharges add up to those of the department mart.
with

fct_admissions as (

    select * from {{ ref('fct_admissions') }}

),

discharged_stays as (

    select
        principal_diagnosis_chapter_number as diagnosis_chapter_number,
        coalesce(principal_diagnosis_chapter_name, 'Unclassified') as diagnosis_chapter_title,
        length_of_stay_days as length_of_stay_nights
    from fct_admissions
    where not is_open

),

final as (

    select
        diagnosis_chapter_number,
        diagnosis_chapter_title,
        count(*) as discharge_count,
        avg(length_of_stay_nights) as average_length_of_stay_nights,
        cast(median(length_of_stay_nights) as double) as median_length_of_stay_nights
    from discharged_stays
    group by diagnosis_chapter_number, diagnosis_chapter_title

)

select * from final
