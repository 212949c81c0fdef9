"""Scheduling: clinic appointments per (hospital, month), with lead times, cancellations and no-shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from generators import ratios
from generators.clinical import VISIT_REASONS
from generators.facilities import Facilities
from generators.fastcodec import joined_text, pick
from generators.providers import Physicians
from generators.registration import Patients, age_band, mrn
from generators.seeds import partition_rng
from generators.timeutil import month_days, skip_dst_gap, weekday

# Visits per patient-year relative to the mean, by age band (0-17, 18-44, 45-64, 65-79, 80+): MEPS.
_VISIT_WEIGHT = np.array([1.0, 0.7, 1.0, 1.6, 1.8])
# Share of weekday visits on each weekday (Mon..Sun): clinics run on weekdays, a few Saturday sessions.
_WEEKDAY_WEIGHT = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.04, 0.0])
_DURATIONS = np.array([15, 20, 30, 40, 60])
_DURATION_P = np.array([0.2, 0.3, 0.35, 0.1, 0.05])
# No-show model (Dantas et al. 2018): log-odds rise with lead time and with a patient's own history,
# which the latent propensity carries, and are higher for young adults.
_NO_SHOW_INTERCEPT = -2.48
_NO_SHOW_LEAD = 0.36  # per log(1 + lead days)
_NO_SHOW_PROPENSITY = 0.9
_NO_SHOW_AGE = np.array([0.0, 0.35, 0.0, -0.35, -0.3])
STATUS = np.array(["Scheduled", "Completed", "Cancelled", "No Show"], dtype=object)
# Visit reasons as codes into one vocabulary (rendered with a lookup, not from Python strings per row).
REASONS = list(dict.fromkeys(reason for options in VISIT_REASONS.values() for reason in options))
_REASON_CODES = {
    line: np.array([REASONS.index(r) for r in options], np.int16) for line, options in VISIT_REASONS.items()
}


@dataclass
class Appointments:
    """One partition's appointments; times are local wall-clock datetime64[s]."""

    appointment_id: pa.Array
    patient: np.ndarray
    physician: np.ndarray
    department: np.ndarray
    booked_at: np.ndarray
    scheduled_at: np.ndarray
    duration: np.ndarray
    outcome: np.ndarray  # index into STATUS (final outcome)
    outcome_at: np.ndarray  # when the outcome was recorded
    reason: np.ndarray  # int16 index into REASONS

    @property
    def completed(self) -> np.ndarray:
        """Rows whose visit took place."""
        return self.outcome == 1


def _clinic_weights(facilities: Facilities, hospital: int, band: np.ndarray, female: np.ndarray) -> tuple:
    """The hospital's clinics and each row's cumulative weights over them.

    Weights depend only on the age band and sex, so they are worked out once per (band, female) class and
    gathered: the same values as row by row, at a fraction of the cost."""
    clinics = np.flatnonzero((facilities.department_hospital == hospital) & ~facilities.department_inpatient)
    lines = facilities.department_line[clinics]
    class_band = np.repeat(np.arange(_VISIT_WEIGHT.size), 2)
    class_female = np.tile(np.array([False, True]), _VISIT_WEIGHT.size)
    weights = np.zeros((class_band.size, clinics.size))
    for column, line in enumerate(lines):
        if line == "PC":
            weights[:, column] = np.where(class_band == 0, 0.3, 1.0)
        elif line == "PEDS":
            weights[:, column] = np.where(class_band == 0, 2.5, 0.0)
        elif line == "OBGY":
            weights[:, column] = np.where(class_female & (class_band >= 1) & (class_band <= 2), 0.35, 0.0)
        else:
            weights[:, column] = np.where(class_band >= 2, 0.09, np.where(class_band == 1, 0.03, 0.0))
    return clinics, weights.cumsum(axis=1)[band * 2 + female]


def _pick_columns(rng: np.random.Generator, cumulative: np.ndarray) -> np.ndarray:
    draw = rng.random(cumulative.shape[0]) * cumulative[:, -1]
    return (cumulative < draw[:, None]).sum(axis=1)


def generate_appointments(
    seed: int,
    hospital: int,
    month: dt.date,
    patients: Patients,
    facilities: Facilities,
    physicians: Physicians,
    timezone: str,
) -> Appointments:
    """Appointments scheduled in one month at one hospital's clinics."""
    rng = partition_rng(seed, "appointments", hospital, month.isoformat())
    days = month_days(month)
    # Bookings run up to ~91 days ahead: only patients registered before the earliest booking can have one.
    eligible = patients.home_patients(hospital, np.datetime64(month, "s") - np.timedelta64(92, "D"))
    if eligible.size == 0:
        return _empty()
    mid_month = np.full(eligible.size, days[len(days) // 2])
    weight = _VISIT_WEIGHT[age_band(patients, eligible, mid_month)]
    expected = weight.sum() * ratios.VISITS_PER_PATIENT_YEAR * days.size / 365 / _VISIT_WEIGHT.mean()
    count = int(rng.poisson(expected * 0.93))  # ~7% of bookings are re-booked cancellations, on top
    patient = eligible[rng.choice(eligible.size, count, p=weight / weight.sum())]
    day_weight = _WEEKDAY_WEIGHT[weekday(days)]
    day = days[rng.choice(days.size, count, p=day_weight / day_weight.sum())]
    slot = rng.integers(0, 35, count)  # 15-minute slots from 08:00 to 16:45
    scheduled = day.astype("datetime64[s]") + (8 * 3600 + slot * 900).astype("timedelta64[s]")
    # Sorted by time as (day of month, slot): a 16-bit key, which numpy's stable sort sorts by radix.
    key = ((day - days[0]).astype(np.int64) * 35 + slot).astype(np.int16)
    order = np.argsort(key, kind="stable")
    patient, scheduled = patient[order], scheduled[order]
    band = age_band(patients, patient, scheduled.astype("datetime64[D]"))
    clinics, cumulative = _clinic_weights(facilities, hospital, band, patients.sex[patient] == 0)
    department = clinics[_pick_columns(rng, cumulative)]
    slots_start = np.searchsorted(physicians.slot_department, department, side="left")
    slots_count = np.searchsorted(physicians.slot_department, department, side="right") - slots_start
    slot_index = slots_start + (rng.random(count) * slots_count).astype(np.int64)
    mixture = rng.random(count)
    lead_days = np.where(
        mixture < 0.3, rng.integers(0, 8, count), np.where(mixture < 0.7, rng.integers(8, 31, count), 0)
    )
    lead_days = np.where(mixture >= 0.7, rng.integers(31, 91, count), lead_days)
    booked = (
        scheduled - lead_days.astype("timedelta64[D]") - rng.integers(1800, 9 * 3600, count).astype("timedelta64[s]")
    )
    booked = skip_dst_gap(booked, timezone)
    # Booked with a physician on staff at booking time, so every NPI is in the registry by then.
    physician = physicians.on_duty(slot_index, booked)
    duration = _DURATIONS[rng.choice(_DURATIONS.size, count, p=_DURATION_P)]
    cancelled = rng.random(count) < ratios.CANCELLATION_RATE
    cancel_at = booked + ((scheduled - booked).astype(np.int64) * rng.random(count)).astype("timedelta64[s]")
    logit = (
        _NO_SHOW_INTERCEPT
        + _NO_SHOW_LEAD * np.log1p(lead_days)
        + _NO_SHOW_PROPENSITY * patients.no_show_propensity[patient]
        + _NO_SHOW_AGE[band]
    )
    no_show = ~cancelled & (rng.random(count) < 1 / (1 + np.exp(-logit)))
    outcome = np.where(cancelled, 2, np.where(no_show, 3, 1))
    visit_end = scheduled + duration.astype("timedelta64[m]")
    outcome_at = np.where(cancelled, cancel_at, np.where(no_show, scheduled + np.timedelta64(1, "h"), visit_end))
    reason = np.zeros(count, dtype=np.int16)
    # Service lines as integer codes (in name order): sorting strings per row costs more than drawing them.
    line_names, line_codes = np.unique(facilities.department_line, return_inverse=True)
    lines = line_codes.ravel()[department]
    for code in np.unique(lines):
        rows = lines == code
        options = _REASON_CODES.get(line_names[code], _REASON_CODES["PC"])
        reason[rows] = options[rng.integers(0, options.size, rows.sum())]
    prefix = f"A{hospital + 1:03d}{month:%Y%m}"
    number = np.arange(1, count + 1)
    appointment_id = joined_text(prefix, (number, 6))
    return Appointments(
        appointment_id,
        patient,
        physician,
        department,
        booked,
        scheduled,
        duration,
        outcome,
        outcome_at,
        reason,
    )


def _empty() -> Appointments:
    nothing = np.array([], dtype=np.int64)
    moment = np.array([], dtype="datetime64[s]")
    return Appointments(pa.array([], pa.string()), nothing, nothing, nothing, moment, moment, nothing, nothing,
                        moment, np.array([], dtype=np.int16))  # fmt: skip


def appointment_versions(
    appointments: Appointments, window_start: np.datetime64 | None, window_end: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a version in the window and the status of their latest version in it (index into STATUS)."""
    resolved = appointments.outcome_at <= window_end
    booked = appointments.booked_at <= window_end
    if window_start is not None:
        resolved &= appointments.outcome_at >= window_start
        booked &= appointments.booked_at >= window_start
    rows = np.flatnonzero(resolved | booked)
    return rows, np.where(resolved[rows], appointments.outcome[rows], 0)


def render_appointments(
    appointments: Appointments,
    rows: np.ndarray,
    status: np.ndarray,
    facilities: Facilities,
    physicians: Physicians,
) -> pa.Table:
    """Appointment rows as the scheduling system writes them."""
    updated = np.where(status == 0, appointments.booked_at[rows], appointments.outcome_at[rows])
    return pa.table(
        {
            "appointment_id": appointments.appointment_id.take(pa.array(rows, pa.int64())),
            "mrn": mrn(appointments.patient[rows]),
            "npi": pa.array(physicians.npi[appointments.physician[rows]]).cast(pa.string()),
            "department_id": pick(facilities.department_ids, appointments.department[rows]),
            "booked_at": pa.array(appointments.booked_at[rows]),
            "scheduled_at": pa.array(appointments.scheduled_at[rows]),
            "duration_minutes": pa.array(appointments.duration[rows], pa.int32()),
            "status": pick(STATUS, status),
            "reason": pick(REASONS, appointments.reason[rows]),
            "updated_at": pa.array(updated.astype("datetime64[s]")),
        }
    )
