"""The platform's one settings object (environment prefix ``HOSPITAL_``) and the data home's layout."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.contracts.registry import DEFAULT_REGISTRY, load_registry


class DataHome:
    """The data home's layout. It is part of the interface: other tools may rely on these paths."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def landing(self) -> Path:
        """Generated or delivered batches, one folder per batch id."""
        return self.root / "landing"

    def batch(self, batch_id: str) -> Path:
        """The folder of one landed batch."""
        return self.landing / batch_id

    @property
    def warehouse(self) -> Path:
        """The embedded DuckDB warehouse file."""
        return self.root / "warehouse.duckdb"

    @property
    def data_docs(self) -> Path:
        """Great Expectations Data Docs site."""
        return self.root / "data_docs"

    @property
    def dbt_docs(self) -> Path:
        """dbt docs site."""
        return self.root / "dbt_docs"

    @property
    def dbt_target(self) -> Path:
        """dbt's build output for pipeline runs (manifest, run results, compiled SQL; no data values)."""
        return self.root / "dbt" / "target"

    @property
    def dbt_logs(self) -> Path:
        """dbt's log files for pipeline runs."""
        return self.root / "dbt" / "logs"

    @property
    def reports(self) -> Path:
        """Published reports: ``latest/`` and one folder per run date."""
        return self.root / "reports"

    @property
    def latest_report(self) -> Path:
        """The latest published report."""
        return self.reports / "latest"

    def dated_report(self, run_date: dt.date) -> Path:
        """The report published on one run date."""
        return self.reports / run_date.isoformat()


@cache
def hospitals_timezone() -> str:
    """The hospitals' time zone as the platform's source registry defines it (``defaults.timezone``)."""
    return load_registry(DEFAULT_REGISTRY).timezone


class Settings(BaseSettings):
    """Every knob of the platform. Read once at the edge (CLI, flows) and passed down explicitly."""

    model_config = SettingsConfigDict(env_prefix="HOSPITAL_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path("data"), description="The data home (git-ignored; holds PHI).")
    warehouse: Literal["duckdb", "snowflake"] = Field(
        default="duckdb", description="Warehouse target: the embedded DuckDB file or Snowflake."
    )
    snowflake_block: str | None = Field(
        default=None, description="Name of a prefect-snowflake connector block; else SNOWFLAKE_* variables."
    )
    patients: int = Field(default=10_000, gt=0, description="Scale: registered patients at the start date.")
    seed: int = Field(default=42, ge=0, description="Seed of the synthetic network.")
    start_date: dt.date = Field(default=dt.date(2024, 1, 1), description="First day of the initial batch.")
    end_date: dt.date = Field(default=dt.date(2025, 12, 31), description="Last day of the initial batch.")
    defect_rate: float = Field(default=0.0, ge=0.0, le=0.5, description="Share of rows given a defect.")
    workers: int = Field(default=1, ge=1, description="Processes used to generate partitions.")
    timezone: str = Field(
        default_factory=lambda: hospitals_timezone(),
        description="The hospitals' time zone: decides which day a scheduled run processes (cron and 'yesterday'). "
        "Default: the source registry's defaults.timezone (flows/sources.yml), where it is defined once.",
    )
    lock_timeout_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="How long a pipeline run waits for another run on the same warehouse file before failing.",
    )
    retention_days: int = Field(
        default=90,
        ge=1,
        description="Days of run history kept (GX results, Data Docs pages, dbt target/logs, report runs); the "
        "published latest report and the runs it points to are always kept.",
    )
    docs_url: str = Field(
        default="http://127.0.0.1:8765",
        description="Base URL under which the data home's report, Data Docs and dbt docs are served "
        "(`hospital docs --serve` serves them there); run artifacts and notifications link to it.",
    )
    dbt_project_dir: Path = Field(
        default=Path(__file__).resolve().parents[1] / "dbt_project", description="The dbt project folder."
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        # Taken from the working directory once, here: dbt resolves relative paths from its project folder and GX's
        # file stores refuse them, so a relative home (the default ``data``) would scatter or fail.
        return home.expanduser().absolute()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, timezone: str) -> str:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {timezone!r}; use an IANA name such as America/Chicago or Europe/Berlin"
            ) from None
        return timezone

    @field_validator("docs_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"docs_url must be an http(s) URL such as http://127.0.0.1:8765, got {url!r}")
        return url.rstrip("/")

    @cached_property
    def paths(self) -> DataHome:
        """The data home's layout."""
        return DataHome(self.home)

    def resource(self):  # -> flows.warehouse.resource.WarehouseResource
        """The configured warehouse (``HOSPITAL_WAREHOUSE``): the data home's DuckDB file, or Snowflake through
        ``HOSPITAL_SNOWFLAKE_BLOCK`` or ``SNOWFLAKE_*`` variables. Every stage of a run reads and writes through it."""
        from flows.warehouse.resource import warehouse_resource

        return warehouse_resource(self.warehouse, duckdb_path=self.paths.warehouse, home=self.home,
                                  snowflake_block=self.snowflake_block)  # fmt: skip
