"""Inpatient units and their staffed beds, planned from the demand the network saw in the year before its start.

A hospital staffs the beds its demand fills, not a fixed share of its catchment. The admission process itself
(``adt.draw_candidates``) is run without any bed limit over the twelve months before the network's start date
(a large sample of it, see ``reference_demand``), and each (hospital, service line)'s mean midnight census, grown
by the registrations expected until the middle of the network's first two years, is the demand it plans for.
Then:

- a service line whose demand would fill fewer than ``ratios.MIN_UNIT_BEDS`` beds has no unit of its own: its
  patients are cared for in the unit it merges into (``clinical.UNIT_MERGE``; a small hospital's medical-surgical
  unit takes cardiology, pediatrics, deliveries...);
- each unit gets the beds its demand fills at ``ratios.TARGET_OCCUPANCY``;
- and the network as a whole at least the beds that keep the share of patients it must turn away under
  ``ratios.MAX_TURNED_AWAY`` by Erlang's loss formula (de Bruin et al. 2010, "Dimensioning hospital wards using
  the Erlang loss model", Ann Oper Res 178): a small network, whose census is a handful of patients, cannot be
  65-80% full without turning away a large share of them, so it is emptier, as small hospitals are.

The reference year depends only on the network (seed, patients, start date), never on a batch's horizon, so the
staffed beds are the same in every batch.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from generators import adt, casemix, ratios
from generators.clinical import HOSPITAL_TYPES, SERVICE_LINE_BY_CODE, UNIT_MERGE
from generators.facilities import Facilities
from generators.registration import Patients
from generators.timeutil import add_months


def reference_demand(
    seed: int, start: dt.date, patients: Patients, facilities: Facilities
) -> dict[tuple[int, str], float]:
    """Mean unconstrained midnight census per (hospital, service line) in the year before ``start``.

    The admission process is run over that year's twelve (hospital, month) partitions from a stream of its own,
    at ``volume`` times its rate so the sample holds about ``ratios.PLANNING_SAMPLE_STAYS`` index stays whatever
    the network's size (a small network's single year would make its beds a lottery), and scaled back. Every
    stay's midnights count, wherever they fall: in a steady state that is the year's mean census (arrivals times
    mean stay), without the edge effects of the year's first and last weeks.
    """
    first_month = add_months(start.replace(day=1), -12)
    days = (np.datetime64(start.replace(day=1), "D") - np.datetime64(first_month, "D")).astype(int)
    # The patients registered before the start: the network's size, whatever horizon the world was built to.
    registered = int(np.count_nonzero(patients.registered_at < np.datetime64(start, "s")))
    yearly_stays = max(1.0, registered * ratios.ADMISSIONS_PER_PATIENT_YEAR)
    volume = max(1.0, float(np.ceil(ratios.PLANNING_SAMPLE_STAYS / yearly_stays)))
    demand: dict[tuple[int, str], float] = {}
    for hospital in range(facilities.hospital_ids.size):
        kind = str(facilities.hospital_types[hospital])
        lines = [casemix.route(kind, dx.service_line) or "MED" for dx in adt.DIAGNOSES]
        nights_by_dx = np.zeros(len(adt.DIAGNOSES))
        for k in range(12):
            month = add_months(first_month, k)
            candidate = adt.draw_candidates(seed, hospital, month, patients, facilities, stream="bed-planning",
                                            volume=volume)  # fmt: skip
            if candidate:
                nights_by_dx += np.bincount(candidate["dx"], weights=candidate["nights"], minlength=len(lines))
        for line, nights in zip(lines, nights_by_dx, strict=True):
            demand[(hospital, line)] = demand.get((hospital, line), 0.0) + nights / days / volume
    return demand


def erlang_loss(beds: int, load: float) -> float:
    """Erlang B: the share of arrivals finding all ``beds`` busy when demand keeps ``load`` beds busy on average."""
    blocked = 1.0
    for servers in range(1, beds + 1):
        blocked = load * blocked / (servers + load * blocked)
    return blocked


def beds_for_loss(load: float, max_loss: float) -> int:
    """The fewest beds that turn away at most ``max_loss`` of the arrivals of ``load`` (Erlang B)."""
    beds = 0
    while erlang_loss(beds, load) > max_loss:
        beds += 1
    return beds


def plan_units(facilities: Facilities, demand: dict[tuple[int, str], float]) -> dict[tuple[int, str], int]:
    """Staffed beds per inpatient unit (hospital, service line): lines too small for a unit merge into another."""
    # Hospitals plan for the middle of the network's first two years: 1.5 years of registrations after the middle
    # of the reference year.
    growth = 1 + ratios.NEW_PATIENTS_PER_YEAR * 1.5
    loads: dict[tuple[int, str], float] = {}
    for hospital, kind in enumerate(facilities.hospital_types):
        lines = [code for code in HOSPITAL_TYPES[str(kind)] if SERVICE_LINE_BY_CODE[code].inpatient]
        unit_load = {line: demand.get((hospital, line), 0.0) * growth for line in lines}
        # Leaves first (orthopedics into surgery before surgery into medicine); medicine is always a unit.
        for line in sorted(lines, key=_merge_depth, reverse=True):
            if line == "MED" or unit_load[line] / ratios.TARGET_OCCUPANCY >= ratios.MIN_UNIT_BEDS:
                continue
            target = _merge_target(line, unit_load)
            unit_load[target] += unit_load.pop(line)
        loads.update({(hospital, line): load for line, load in unit_load.items()})
    total = sum(loads.values())
    # Beds per unit of demand: the occupancy target, or more where the network is too small to reach it without
    # turning patients away (units share their beds through overflow, so the network is the pool).
    beds_per_load = 1 / ratios.TARGET_OCCUPANCY
    if total > 0:
        beds_per_load = max(beds_per_load, beds_for_loss(total, ratios.MAX_TURNED_AWAY) / total)
    return {key: max(1, math.floor(load * beds_per_load + 0.5)) for key, load in loads.items()}


def _merge_depth(line: str) -> int:
    depth = 0
    while line in UNIT_MERGE:
        line, depth = UNIT_MERGE[line], depth + 1
    return depth


def _merge_target(line: str, units: dict[str, float]) -> str:
    target = UNIT_MERGE[line]
    while target not in units:
        target = UNIT_MERGE[target]
    return target


def staff_facilities(seed: int, start: dt.date, patients: Patients, facilities: Facilities) -> Facilities:
    """``facilities`` with its inpatient units and their staffed beds, planned from the reference year."""
    return facilities.with_units(plan_units(facilities, reference_demand(seed, start, patients, facilities)))


def occupancy_band(mean_census: float) -> tuple[float, float]:
    """The occupancy band for a network whose mean midnight census is ``mean_census``.

    AHA's 65-80% (``ratios.BANDS["bed_occupancy"]``) wherever Erlang's loss formula lets the network reach 65%
    while turning away at most ``ratios.MAX_TURNED_AWAY`` of its patients. A network too small for that is held to
    a lower end of its own: the occupancy it would have staffed so generously that it turns away only
    ``ratios.GENEROUS_TURNED_AWAY`` (emptier than that is not small, it is overstaffed). At 2,000 patients the
    census is ~3.5 patients: 7 beds turn away 5% (50% full), 9 beds 1% (39%), so its band is 39-80%.
    """
    band = ratios.BANDS["bed_occupancy"]
    if mean_census <= 0:
        return 0.0, band.high
    if mean_census / max(1, beds_for_loss(mean_census, ratios.MAX_TURNED_AWAY)) >= band.low:
        return band.low, band.high
    return mean_census / max(1, beds_for_loss(mean_census, ratios.GENEROUS_TURNED_AWAY)), band.high
