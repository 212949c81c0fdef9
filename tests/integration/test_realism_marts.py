"""Realism where a reviewer reads it: the published bands (``generators.ratios.BANDS``) hold in the marts.

A module fixture per scale generates the network `make run` generates (its seed, start and end dates: two years),
at 2,000, 10,000 (the default scale) and 100,000 patients (``slow``), loads it with the platform's loader and
builds the KPI marts with dbt; every KPI is then computed from the marts the way the report's tiles compute it
(reports/html.py ``kpi_tiles``: sums and ratios of sums over the whole period), or, for the shapes the tiles do not
show (the length-of-stay tail, seasonality, weekdays, sex and age), from the fact tables of the marts schema.

A figure measured on n events is held to its band up to two standard errors of that sample (``Band.holds``): at
2,000 patients a share of stays rests on ~500 stays and the respiratory winter peak on ~30, and no model removes
that noise; at 10,000 patients and up the margin is under two points. Bed occupancy is the tile's whole-period
figure (sum of midnight census over sum of staffed beds, every day of the period), not flows/kpis.py's last-day
figure. A network too small to be 65-80% full without turning patients away is held to the band
``capacity.occupancy_band`` derives from Erlang's loss formula; the default scale must be held to the published
band itself.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flows.contracts.registry import load_registry
from flows.settings import Settings
from generators.batch import SIMULATED_SOURCES, NetworkSpec, generate_initial
from generators.capacity import occupancy_band
from generators.clinical import PLANNED_READMISSION_CODE
from generators.ratios import BANDS
from tests.integration.dbtkit import copy_project, duckdb_target, invoke, load

pytestmark = pytest.mark.integration

DEFAULTS = Settings.model_fields
SEED = DEFAULTS["seed"].default
START = DEFAULTS["start_date"].default
END = DEFAULTS["end_date"].default
DEFAULT_PATIENTS = DEFAULTS["patients"].default
SCALES = [2_000, 10_000, pytest.param(100_000, marks=pytest.mark.slow, id="100000")]
SALT = "realism-test-salt-" + "0123456789abcdef" * 2
# The marts the KPIs read, with everything upstream of them (the salt and the calendar read no other model).
MARTS = (
    "mart_admissions_monthly", "mart_readmissions_monthly", "mart_bed_occupancy_daily", "mart_no_shows_by_weekday",
    "mart_no_shows_by_lead_time", "mart_claim_denials", "mart_payer_mix", "mart_patient_demographics",
    "fct_admissions", "fct_appointments", "dim_patients",
)  # fmt: skip
SELECT = ["--select", "int_surrogate_salt_generated", *(f"+{mart}" for mart in MARTS)]
# Every source but the charge lines (the largest, a third of the rows): no mart above reads them, and the claims
# are generated from them whether or not they are written.
SOURCES = tuple(name for name in SIMULATED_SOURCES if name != "billing__charges")
VARS = ["--vars", f"{{surrogate_salt: {SALT}}}"]
AGED_65_PLUS = ("65-74", "75-84", "85-89", "90+")


@dataclass
class Network:
    """The KPIs of one scale's marts, and the size of the network behind them."""

    patients: int
    kpis: dict[str, float]


def build_marts(root: Path, patients: int) -> Path:
    """Generate `make run`'s network at ``patients``, load it and build the KPI marts; the warehouse's path."""
    registry = load_registry()
    network = NetworkSpec(seed=SEED, patients=patients, start_date=START)
    batch = generate_initial(root / "landing", network, END, registry=registry, workers=2, sources=SOURCES)
    warehouse = root / "warehouse.duckdb"
    load(batch.path, warehouse)
    shutil.rmtree(root / "landing")  # hundreds of MB at 100,000 patients; the warehouse holds what is needed
    project = copy_project(root / "dbt_project")
    with duckdb_target(warehouse):
        seeded = invoke(project, root, "seed")
        assert seeded.success, seeded.exception
        built = invoke(project, root, "run", *SELECT, *VARS)
        assert built.success, built.exception
    return warehouse


def measure(warehouse: Path, zone: str) -> dict[str, float]:
    """Every figure the bands are checked on, from the marts of ``warehouse`` (opened read-only), with the
    standard error of each sampled figure as ``<name>_se`` (``Band.holds`` allows two of them).

    ``zone`` is the hospitals' time zone: calendar rules use local dates, as the marts' ``local_date`` macro does.
    """
    local_admission_date = f"cast(timezone('{zone}', timezone('UTC', admitted_at)) as date)"
    month, weekday = f"month({local_admission_date})", f"isodow({local_admission_date}) <= 5"
    long_lead, short_lead = "('31-60 days', '61+ days')", "('0 days', '1-7 days')"
    statements = {
        # The tiles (reports/html.py kpi_tiles): sums and ratios of sums over the whole period.
        ("average_length_of_stay", "discharges"): "select sum(average_length_of_stay_nights * discharge_count) "
        "/ sum(discharge_count), sum(discharge_count) from marts.mart_admissions_monthly",
        ("readmissions", "index_stays"): "select sum(readmission_count), sum(index_discharge_count) "
        "from marts.mart_readmissions_monthly",
        ("no_show_rate", "appointments", "clinic_visits_on_weekdays"): "select sum(no_show_count) "
        "/ sum(appointment_count), sum(appointment_count), sum(appointment_count) filter (where iso_day_of_week <= 5) "
        "/ sum(appointment_count) from marts.mart_no_shows_by_weekday",
        ("initial_denial_rate", "claims"): "select sum(initially_denied_count) / sum(claim_count), sum(claim_count) "
        "from marts.mart_claim_denials",
        ("census", "bed_days", "days", "census_above_beds"): "select sum(midnight_census), sum(staffed_beds), "
        "count(distinct census_date), max(midnight_census - staffed_beds) from marts.mart_bed_occupancy_daily",
        # What the tiles do not show, from the same marts or the facts of the marts schema.
        ("medicare_medicaid_share_of_stays", "admissions"): "select sum(admission_count) filter (where payer_type "
        "in ('medicare', 'medicaid')) / sum(admission_count), sum(admission_count) from marts.mart_payer_mix",
        ("long_lead_no_show_rate", "long_lead_appointments", "short_lead_no_show_rate", "short_lead_appointments"): (
            f"select sum(no_show_count) filter (where lead_time_band in {long_lead}) "
            f"/ sum(appointment_count) filter (where lead_time_band in {long_lead}), "
            f"sum(appointment_count) filter (where lead_time_band in {long_lead}), "
            f"sum(no_show_count) filter (where lead_time_band in {short_lead}) "
            f"/ sum(appointment_count) filter (where lead_time_band in {short_lead}), "
            f"sum(appointment_count) filter (where lead_time_band in {short_lead}) "
            "from marts.mart_no_shows_by_lead_time"
        ),
        (
            "no_show_rate_after_a_no_show",
            "visits_after_a_no_show",
            "no_show_rate_after_none",
            "visits_after_none",
        ): _PRIOR_NO_SHOWS,
        ("mean_nights", "sd_nights", "median_nights", "p99_nights"): "select avg(length_of_stay_days), "
        "stddev_samp(length_of_stay_days), median(length_of_stay_days), quantile_cont(length_of_stay_days, 0.99) "
        "from marts.fct_admissions where not is_open",
        ("planned_readmission_stays",): "select count(*) from marts.fct_admissions where admission_type = "
        f"'Elective' and principal_diagnosis_code = '{PLANNED_READMISSION_CODE}'",
        ("respiratory_winter", "respiratory_summer"): f"select count(*) filter (where {month} in (12, 1, 2)), "
        f"count(*) filter (where {month} in (6, 7, 8)) from marts.fct_admissions "
        "where principal_diagnosis_chapter_number = 10",
        ("elective_admissions_on_weekdays", "elective_stays", "emergency_admissions_on_weekdays", "emergency_stays"): (
            f"select avg(cast({weekday} as double)) filter (where admission_type = 'Elective'), "
            "count(*) filter (where admission_type = 'Elective'), "
            f"avg(cast({weekday} as double)) filter (where admission_type = 'Emergency'), "
            "count(*) filter (where admission_type = 'Emergency') from marts.fct_admissions"
        ),
        # HCUP counts stays: the patient's sex and the age band on the admission day, per stay.
        ("female_share_of_stays", "aged_65_plus_share_of_stays", "stays"): "select "
        "avg(cast(dim_patients.sex = 'F' as double)), "
        f"avg(cast(fct_admissions.age_band_at_admission in {AGED_65_PLUS} as double)), count(*) "
        "from marts.fct_admissions inner join marts.dim_patients using (patient_key)",
        # The report's demographics chart counts patients (first stay), not stays: shown, not banded.
        ("female_share_of_inpatients", "aged_65_plus_share_of_inpatients"): "select "
        "sum(patient_share) filter (where sex = 'F'), "
        f"sum(patient_share) filter (where age_band in {AGED_65_PLUS}) from marts.mart_patient_demographics",
    }
    k: dict[str, float] = {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for names, statement in statements.items():
            row = connection.execute(statement).fetchone()
            assert row is not None
            k.update(zip(names, (float(value) for value in row), strict=True))
    k["readmission_rate"] = k["readmissions"] / k["index_stays"]
    k["bed_occupancy"] = k["census"] / k["bed_days"]
    k["mean_census"] = k["census"] / k["days"]
    k["length_of_stay_p99_to_mean"] = k["p99_nights"] / k["mean_nights"]
    k["no_show_long_minus_short_lead"] = k["long_lead_no_show_rate"] - k["short_lead_no_show_rate"]
    k["no_show_prior_ratio"] = k["no_show_rate_after_a_no_show"] / k["no_show_rate_after_none"]
    k["respiratory_winter_to_summer"] = k["respiratory_winter"] / k["respiratory_summer"]
    # Standard errors: of a share of n events (binomial), a mean (sd / sqrt(n)), a difference of shares, a ratio
    # of shares and a ratio of two counts (Poisson), the last two by the delta method.
    for name, events in (
        ("readmission_rate", "index_stays"), ("no_show_rate", "appointments"), ("initial_denial_rate", "claims"),
        ("medicare_medicaid_share_of_stays", "admissions"), ("clinic_visits_on_weekdays", "appointments"),
        ("elective_admissions_on_weekdays", "elective_stays"), ("emergency_admissions_on_weekdays", "emergency_stays"),
        ("female_share_of_stays", "stays"), ("aged_65_plus_share_of_stays", "stays"),
    ):  # fmt: skip
        k[f"{name}_se"] = _share_se(k[name], k[events])
    k["average_length_of_stay_se"] = k["sd_nights"] / math.sqrt(k["discharges"])
    k["no_show_long_minus_short_lead_se"] = math.hypot(
        _share_se(k["long_lead_no_show_rate"], k["long_lead_appointments"]),
        _share_se(k["short_lead_no_show_rate"], k["short_lead_appointments"]),
    )
    k["no_show_prior_ratio_se"] = k["no_show_prior_ratio"] * math.hypot(
        _share_se(k["no_show_rate_after_a_no_show"], k["visits_after_a_no_show"]) / k["no_show_rate_after_a_no_show"],
        _share_se(k["no_show_rate_after_none"], k["visits_after_none"]) / k["no_show_rate_after_none"],
    )
    k["respiratory_winter_to_summer_se"] = k["respiratory_winter_to_summer"] * math.sqrt(
        1 / k["respiratory_winter"] + 1 / k["respiratory_summer"]
    )
    return k


def _share_se(share: float, events: float) -> float:
    return math.sqrt(share * (1 - share) / events)


# No-show rate of visits after a patient's earlier no-show, and after none (each patient's first visit left out).
_PRIOR_NO_SHOWS = """
    with due as (
        select patient_key, scheduled_at, appointment_key, is_no_show
        from marts.fct_appointments
        where appointment_status in ('Completed', 'No Show')
    ),
    sequenced as (
        select
            is_no_show,
            row_number() over visits as visit_number,
            coalesce(sum(cast(is_no_show as integer)) over (
                visits rows between unbounded preceding and 1 preceding), 0) as prior_no_shows
        from due
        window visits as (partition by patient_key order by scheduled_at, appointment_key)
    )
    select
        avg(cast(is_no_show as double)) filter (where visit_number > 1 and prior_no_shows > 0),
        count(*) filter (where visit_number > 1 and prior_no_shows > 0),
        avg(cast(is_no_show as double)) filter (where visit_number > 1 and prior_no_shows = 0),
        count(*) filter (where visit_number > 1 and prior_no_shows = 0)
    from sequenced
"""


@pytest.fixture(scope="module", params=SCALES, ids=str)
def network(request, tmp_path_factory) -> Iterator[Network]:
    """The KPIs of `make run`'s network at one scale, from its marts (built once per scale)."""
    root = tmp_path_factory.mktemp(f"realism-{request.param}")
    warehouse = build_marts(root, request.param)
    yield Network(request.param, measure(warehouse, load_registry()["adt__admissions"].timezone))
    shutil.rmtree(root, ignore_errors=True)


def assert_in_band(name: str, network: Network) -> None:
    band, value, error = BANDS[name], network.kpis[name], network.kpis.get(f"{name}_se", 0.0)
    assert band.holds(value, error), (
        f"{name} = {value:.4f} (standard error {error:.4f}) at {network.patients:,} patients, outside "
        f"{band.low}-{band.high} (published {band.published}, {band.source})"
    )


def test_average_length_of_stay_is_about_hcups_with_a_long_right_tail(network):
    kpis = network.kpis
    assert_in_band("average_length_of_stay", network)
    assert kpis["average_length_of_stay"] == pytest.approx(kpis["mean_nights"])  # the tile agrees with the stays
    assert kpis["median_nights"] < kpis["mean_nights"]
    assert_in_band("length_of_stay_p99_to_mean", network)


def test_thirty_day_readmissions_are_about_fourteen_percent_and_planned_ones_exist(network):
    # The tile: readmissions over eligible index stays of every month, provisional months included.
    assert_in_band("readmission_rate", network)
    assert network.kpis["planned_readmission_stays"] > 0, "planned readmissions must exist for the mart to leave out"


def test_no_shows_are_about_a_quarter_and_rise_with_lead_time_and_prior_no_shows(network):
    assert_in_band("no_show_rate", network)
    assert_in_band("no_show_long_minus_short_lead", network)
    assert_in_band("no_show_prior_ratio", network)


def test_initial_claim_denials_are_ten_to_thirteen_percent(network):
    assert_in_band("initial_denial_rate", network)


def test_medicare_and_medicaid_pay_for_most_stays(network):
    assert_in_band("medicare_medicaid_share_of_stays", network)


def test_bed_occupancy_over_the_period_is_in_the_band_its_size_allows(network):
    kpis = network.kpis
    assert kpis["census_above_beds"] <= 0, "a hospital's midnight census above its staffed beds"
    low, high = occupancy_band(kpis["mean_census"])
    assert low <= kpis["bed_occupancy"] <= high, (
        f"occupancy {kpis['bed_occupancy']:.3f} at {network.patients:,} patients "
        f"(mean census {kpis['mean_census']:.1f}), outside {low:.3f}-{high:.3f}"
    )
    if network.patients >= DEFAULT_PATIENTS:  # the default scale and up are held to the published band itself
        assert (low, high) == (BANDS["bed_occupancy"].low, BANDS["bed_occupancy"].high)


def test_respiratory_admissions_peak_in_winter(network):
    assert_in_band("respiratory_winter_to_summer", network)


def test_elective_admissions_and_clinic_visits_fall_on_weekdays(network):
    assert_in_band("elective_admissions_on_weekdays", network)
    assert_in_band("emergency_admissions_on_weekdays", network)
    assert_in_band("clinic_visits_on_weekdays", network)


def test_inpatient_stays_are_mostly_womens_and_older_adults(network):
    assert_in_band("female_share_of_stays", network)
    assert_in_band("aged_65_plus_share_of_stays", network)


def test_the_default_scale_is_one_of_those_checked():
    assert DEFAULT_PATIENTS in [scale if isinstance(scale, int) else scale.values[0] for scale in SCALES]
