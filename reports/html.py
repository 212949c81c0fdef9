"""The HTML report: one self-contained page (charts embedded as data URIs) rendered from a Jinja2 template."""

from __future__ import annotations

import base64
import datetime as dt
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd

from flows.contracts.quality import CheckpointOutcome
from reports.kpis import kpis, show

TEMPLATES = Path(__file__).resolve().parent / "templates"
DATE_COLUMNS = ("month_date", "submission_month", "census_date")


@dataclass(frozen=True)
class Tile:
    """One KPI tile: a label, the formatted value and a note on what it covers."""

    key: str
    label: str
    value: str
    note: str


@dataclass(frozen=True)
class ChartImage:
    """One rendered chart as the page embeds it."""

    name: str
    mart: str
    alt: str
    png: Path
    grain: str = ""


def period_of(frames: dict[str, pd.DataFrame]) -> tuple[dt.date, dt.date] | None:
    """The first and last day the published marts cover (months count to their last day)."""
    starts, ends = [], []
    for frame in frames.values():
        for column in DATE_COLUMNS:
            if column in frame.columns and frame[column].notna().any():
                values = pd.to_datetime(frame[column].dropna())
                starts.append(values.min().date())
                last = values.max()
                ends.append((last + pd.offsets.MonthEnd(0)).date() if column != "census_date" else last.date())
    return (min(starts), max(ends)) if starts else None


def format_period(period: tuple[dt.date, dt.date] | None) -> str:
    """A period as ``YYYY-MM-DD to YYYY-MM-DD`` (or "no dated data")."""
    return "no dated data" if period is None else f"{period[0].isoformat()} to {period[1].isoformat()}"


def kpi_tiles(marts: dict[str, pd.DataFrame]) -> list[Tile]:
    """The seven KPI tiles over the whole period, from the marts before cell suppression (reports/kpis.py).

    A tile is a grand total (or a ratio of two), which complementary suppression already treats as known; a tile
    resting on a total from 1 to 10 is itself suppressed. The chart of the same KPI draws the same value.
    """
    tiles = []
    for key, value in kpis(marts).items():
        definition = value.definition
        if value.value is None:
            tiles.append(Tile(key, definition.label, "n/a", "mart not available or empty"))
        elif value.suppressed:
            tiles.append(Tile(key, definition.label, "suppressed", "rests on a count from 1 to 10"))
        else:
            note = definition.note
            if key == "occupancy" and _small_network(marts.get(definition.mart)):
                note += SMALL_NETWORK_NOTE
            tiles.append(Tile(key, definition.label, show(value.value, definition.style), note))
    return tiles


#: Below this mean midnight census a network's occupancy band starts lower (docs/generator.md, "Small networks are
#: emptier, and why": with random arrivals a few beds cannot run 65-80% full without turning patients away).
SMALL_NETWORK_CENSUS = 10
SMALL_NETWORK_NOTE = (
    "; a small network (fewer than 10 patients in beds on an average night) runs emptier, as small rural "
    "hospitals do: few beds cannot run fuller without turning patients away"
)


def _small_network(beds: pd.DataFrame | None) -> bool:
    """Whether the network's mean midnight census is under ``SMALL_NETWORK_CENSUS`` (the tile says why it is low)."""
    if beds is None or beds.empty:
        return False
    nights = beds["census_date"].nunique()
    return bool(nights) and float(beds["midnight_census"].sum()) / nights < SMALL_NETWORK_CENSUS


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk."""
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def render_report(
    *,
    path: Path,
    frames: dict[str, pd.DataFrame],
    marts: dict[str, pd.DataFrame],
    charts: Sequence[ChartImage],
    checkpoints: Sequence[CheckpointOutcome],
    run_id: str,
    run_date: dt.date,
    freshness: str,
    suppressed_cells: int,
    missing: Sequence[str],
    data_docs_url: str | None,
    dbt_docs_url: str | None,
) -> Path:
    """Write the self-contained report page; every chart is embedded as a PNG data URI.

    ``frames`` are the published (suppressed) tables, ``marts`` the same before suppression (for the KPI tiles).
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    chart_context = []
    for chart in charts:
        width, height = png_size(chart.png)
        chart_context.append(
            {
                "name": chart.name,
                "mart": chart.mart,
                "alt": chart.alt,
                "grain": chart.grain,
                "png_base64": base64.b64encode(chart.png.read_bytes()).decode("ascii"),
                "width": width,
                "height": height,
            }
        )
    html = environment.get_template("report.html.j2").render(
        period=format_period(period_of(frames)),
        run_id=run_id,
        run_date=run_date.isoformat(),
        freshness=freshness,
        suppressed_cells=suppressed_cells,
        tiles=kpi_tiles(marts),
        charts=chart_context,
        missing=list(missing),
        checkpoints=[
            {"name": c.checkpoint, "evaluated": c.evaluated, "failed": len(c.failures), "success": c.success}
            for c in checkpoints
        ],
        data_docs_url=data_docs_url,
        dbt_docs_url=dbt_docs_url,
    )
    path.write_text(html, encoding="utf-8")
    return path
