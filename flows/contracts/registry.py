"""The source registry: one declarative file (``flows/sources.yml``) describing every landing source, and the
hospitals' time zone (its ``defaults.timezone``)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "sources.yml"

_TYPE_RE = re.compile(
    r"^(varchar|integer|bigint|double|date|timestamp|timestamptz|boolean|json|decimal\(\d+,\s*\d+\))"
    r"(\s+nullable)?$"
)


class RegistryError(ValueError):
    """The registry file is not valid; the message names the file, source and field."""


class Column(BaseModel):
    """One expected column of a source."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    nullable: bool = False


class Source(BaseModel):
    """One landing source: how its files are written and what they hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    system: str
    entity: str
    description: str = ""
    pattern: str
    format: Literal["csv", "json", "jsonl"]
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"
    header: bool = True
    line_ending: Literal["lf", "crlf"] = "lf"
    timezone: str = "UTC"
    delivery: Literal["full", "incremental"] = "incremental"
    primary_key: tuple[str, ...] = ()
    unexpected_columns: Literal["load", "fail"] = "fail"
    max_reject_rate: float = Field(default=0.01, ge=0, le=1)
    columns: tuple[Column, ...]

    @field_validator("columns", mode="before")
    @classmethod
    def _parse_columns(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        parsed = []
        for name, spec in value.items():
            match = _TYPE_RE.match(str(spec).strip())
            if not match:
                raise ValueError(f"column {name!r}: unknown type {spec!r}")
            parsed.append(Column(name=name, type=match.group(1).replace(" ", ""), nullable=bool(match.group(2))))
        return tuple(parsed)

    @property
    def table(self) -> str:
        """Name of the raw table (without schema)."""
        return f"{self.system}__{self.entity}"

    @property
    def column_names(self) -> list[str]:
        """Expected column names in file order."""
        return [column.name for column in self.columns]

    @property
    def newline(self) -> str:
        """The line terminator the source writes."""
        return "\r\n" if self.line_ending == "crlf" else "\n"


class Registry(BaseModel):
    """All sources of one registry file, keyed by name."""

    model_config = ConfigDict(frozen=True)

    path: Path
    sources: dict[str, Source]
    #: The source systems' local time zone (the registry's ``defaults.timezone``): for the platform's own registry,
    #: the hospitals' time zone, which decides local days, months and when "02:00" is. Defined here only.
    timezone: str = "UTC"

    def __getitem__(self, name: str) -> Source:
        return self.sources[name]

    @cached_property
    def by_entity(self) -> dict[str, Source]:
        """Sources keyed by entity (entity names are unique within the platform's own registry)."""
        return {source.entity: source for source in self.sources.values()}


def load_registry(path: Path = DEFAULT_REGISTRY) -> Registry:
    """Read and validate a registry file, applying its ``defaults`` to every source."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: cannot read the source registry ({exc})") from exc
    defaults = document.get("defaults", {})
    sources: dict[str, Source] = {}
    for name, entry in (document.get("sources") or {}).items():
        try:
            sources[name] = Source(name=name, **{**defaults, **entry})
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{path}: source {name!r} is not valid: {exc}") from exc
    if not sources:
        raise RegistryError(f"{path}: no sources defined; add entries under 'sources:'")
    return Registry(path=path, sources=sources, timezone=defaults.get("timezone", "UTC"))
