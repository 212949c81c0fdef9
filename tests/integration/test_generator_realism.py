"""Realism bands: KPIs computed from the landing files of a 30,000-patient year are in the published bands.

The bands are ``generators.ratios.BANDS``, the one definition the marts' realism tests
(tests/integration/test_realism_marts.py) check too, at 2,000, 10,000 and 100,000 patients.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from generators.clinical import EXPIRED_DISPOSITION, PLANNED_READMISSION_CODE, TRANSFER_DISPOSITION
from generators.payers import PLAN_IDS, PLAN_PAYER_TYPE
from generators.ratios import BANDS

pytestmark = pytest.mark.integration


def _discharged(tables):
    admissions = tables["adt__admissions"]
    return admissions.filter(pc.is_valid(admissions["discharge_at"]))


def _nights(admissions) -> np.ndarray:
    admit = admissions["admit_at"].to_numpy().astype("datetime64[D]")
    discharge = admissions["discharge_at"].to_numpy().astype("datetime64[D]")
    return (discharge - admit).astype(int)


def test_average_length_of_stay_is_about_hcup_with_a_long_right_tail(initial_tables):
    nights = _nights(_discharged(initial_tables))
    assert BANDS["average_length_of_stay"].holds(nights.mean())
    assert np.median(nights) < nights.mean()  # right-skewed
    assert BANDS["length_of_stay_p99_to_mean"].holds(np.percentile(nights, 99) / nights.mean())


def _readmission_rate(admissions) -> tuple[float, int]:
    """HRRP-style: unplanned readmission within 30 days of an index discharge; transfers and deaths are not index."""
    mrn = np.asarray(admissions["mrn"].to_pylist(), dtype=object)
    admit = admissions["admit_at"].to_numpy().astype("datetime64[D]")
    discharge = admissions["discharge_at"].to_numpy().astype("datetime64[D]")
    disposition = np.asarray(admissions["discharge_disposition"].to_pylist(), dtype=object)
    planned = np.asarray(admissions["principal_dx_code"].to_pylist(), dtype=object) == PLANNED_READMISSION_CODE
    order = np.lexsort((admit, mrn))
    mrn, admit, discharge, disposition, planned = (a[order] for a in (mrn, admit, discharge, disposition, planned))
    same_next = np.r_[mrn[1:] == mrn[:-1], False]
    gap = np.r_[(admit[1:] - discharge[:-1]).astype(int), 10_000]
    next_planned = np.r_[planned[1:], False]
    window_end = discharge.max() - np.timedelta64(30, "D")
    index = ~np.isin(disposition, (TRANSFER_DISPOSITION, EXPIRED_DISPOSITION)) & (discharge <= window_end)
    readmitted = same_next & (gap >= 0) & (gap <= 30) & ~next_planned
    return float(readmitted[index].mean()), int((same_next & (gap <= 30) & next_planned)[index].sum())


def test_thirty_day_readmissions_are_about_fourteen_percent_with_planned_ones_apart(initial_tables):
    rate, planned = _readmission_rate(_discharged(initial_tables))
    assert BANDS["readmission_rate"].holds(rate)
    assert planned > 0, "planned readmissions (elective chemotherapy, Z51.11) must exist and be distinguishable"


def test_no_shows_are_twenty_to_twenty_five_percent_and_rise_with_lead_time(initial_tables):
    appointments = initial_tables["scheduling__appointments"]
    status = np.asarray(appointments["status"].to_pylist(), dtype=object)
    attended = np.isin(status, ("Completed", "No Show"))
    no_show = status == "No Show"
    rate = no_show[attended].mean()
    assert BANDS["no_show_rate"].holds(rate)
    lead = (
        appointments["scheduled_at"].to_numpy().astype("datetime64[D]")
        - appointments["booked_at"].to_numpy().astype("datetime64[D]")
    ).astype(int)
    gap = no_show[attended & (lead > 30)].mean() - no_show[attended & (lead <= 7)].mean()
    assert BANDS["no_show_long_minus_short_lead"].holds(gap)


def test_prior_no_shows_predict_no_shows(initial_tables):
    appointments = initial_tables["scheduling__appointments"]
    status = np.asarray(appointments["status"].to_pylist(), dtype=object)
    keep = np.isin(status, ("Completed", "No Show"))
    mrn = np.asarray(appointments["mrn"].to_pylist(), dtype=object)[keep]
    when = appointments["scheduled_at"].to_numpy()[keep]
    missed = (status[keep] == "No Show").astype(int)
    order = np.lexsort((when, mrn))
    mrn, missed = mrn[order], missed[order]
    first = np.r_[True, mrn[1:] != mrn[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(mrn.size), 0))
    prior = np.cumsum(missed) - missed - (np.cumsum(missed) - missed)[group_start]
    later = ~first
    assert BANDS["no_show_prior_ratio"].holds(missed[later & (prior > 0)].mean() / missed[later & (prior == 0)].mean())


def test_initial_claim_denials_are_ten_to_thirteen_percent(initial_tables):
    claims = initial_tables["claims__claims"]
    histories = claims["status_history"].to_pylist()
    adjudicated = [h for h in histories if len(h) >= 2]
    denied_first = sum(h[1]["status"] == "denied" for h in adjudicated)
    assert BANDS["initial_denial_rate"].holds(denied_first / len(adjudicated))


def test_medicare_and_medicaid_pay_for_over_half_of_inpatient_stays(initial_tables):
    admissions = _discharged(initial_tables)
    coverage = initial_tables["payers__coverage"]
    plan_type = dict(zip(PLAN_IDS, PLAN_PAYER_TYPE, strict=True))
    # Payer of a stay: the coverage effective at admission.
    by_patient: dict[str, list] = {}
    for mrn, plan, effective in zip(
        coverage["mrn"].to_pylist(),
        coverage["plan_id"].to_pylist(),
        coverage["effective_date"].to_pylist(),
        strict=True,
    ):
        by_patient.setdefault(mrn, []).append((effective, plan))
    public = 0
    for mrn, admit in zip(admissions["mrn"].to_pylist(), admissions["admit_at"].to_pylist(), strict=True):
        plans = sorted(by_patient[mrn])
        current = [plan for effective, plan in plans if effective <= admit.date()] or [plans[0][1]]
        public += plan_type[current[-1]] in ("medicare", "medicaid")
    assert BANDS["medicare_medicaid_share_of_stays"].holds(public / admissions.num_rows)


def test_bed_occupancy_is_sixty_five_to_eighty_percent_and_never_above_staffed_beds(initial_tables):
    admissions = initial_tables["adt__admissions"]
    departments = initial_tables["facilities__departments"]
    beds = dict(zip(departments["department_id"].to_pylist(), departments["staffed_beds"].to_pylist(), strict=True))
    admit = admissions["admit_at"].to_numpy().astype("datetime64[D]")
    discharge = admissions["discharge_at"].to_numpy().astype("datetime64[D]")
    discharge = np.where(np.isnat(discharge), np.datetime64("2025-01-01"), discharge)
    department = np.asarray(admissions["department_id"].to_pylist(), dtype=object)
    days = np.arange(np.datetime64("2024-02-01"), np.datetime64("2025-01-01"))
    occupied, capacity = 0, 0
    for dept in np.unique(department):
        rows = department == dept
        # Midnight census: stays admitted on or before the day and discharged after it.
        census = np.searchsorted(np.sort(admit[rows]), days, side="right") - np.searchsorted(
            np.sort(discharge[rows]), days, side="right"
        )
        assert census.max() <= beds[dept], f"{dept}: census above staffed beds"
        occupied += census.sum()
        capacity += beds[dept] * days.size
    assert BANDS["bed_occupancy"].holds(occupied / capacity)


def test_respiratory_admissions_peak_in_winter(initial_tables):
    admissions = initial_tables["adt__admissions"]
    month = admissions["admit_at"].to_numpy().astype("datetime64[M]").astype(int) % 12 + 1
    respiratory = np.char.startswith(np.asarray(admissions["principal_dx_code"].to_pylist(), dtype=str), "J")
    winter = respiratory[np.isin(month, (12, 1, 2))].sum()
    summer = respiratory[np.isin(month, (6, 7, 8))].sum()
    assert BANDS["respiratory_winter_to_summer"].holds(winter / summer)


def test_elective_admissions_and_clinic_visits_fall_on_weekdays(initial_tables):
    admissions = initial_tables["adt__admissions"]
    weekday = (admissions["admit_at"].to_numpy().astype("datetime64[D]").astype(int) + 3) % 7
    admission_type = np.asarray(admissions["admission_type"].to_pylist(), dtype=object)
    assert BANDS["elective_admissions_on_weekdays"].holds((weekday[admission_type == "Elective"] < 5).mean())
    assert BANDS["emergency_admissions_on_weekdays"].holds((weekday[admission_type == "Emergency"] < 5).mean())
    visits = initial_tables["scheduling__appointments"]["scheduled_at"].to_numpy().astype("datetime64[D]")
    assert BANDS["clinic_visits_on_weekdays"].holds((((visits.astype(int) + 3) % 7) < 5).mean())


def test_inpatients_are_mostly_women_and_older_adults(initial_tables):
    admissions = initial_tables["adt__admissions"]
    patients = initial_tables["registration__patients"]
    sex = dict(zip(patients["mrn"].to_pylist(), patients["sex"].to_pylist(), strict=True))
    birth = dict(zip(patients["mrn"].to_pylist(), patients["birth_date"].to_pylist(), strict=True))
    mrns = admissions["mrn"].to_pylist()
    female = np.mean([sex[m] == "F" for m in mrns])
    ages = [(a.date() - birth[m]).days / 365.25 for m, a in zip(mrns, admissions["admit_at"].to_pylist(), strict=True)]
    assert BANDS["female_share_of_stays"].holds(female)
    assert BANDS["aged_65_plus_share_of_stays"].holds(np.mean(np.array(ages) >= 65))
