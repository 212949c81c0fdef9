"""The warehouse resource: the one object every stage reads and writes the warehouse through.

A ``WarehouseResource`` is the embedded DuckDB file or a Snowflake account, chosen once from ``Settings``
(``HOSPITAL_WAREHOUSE``) by :func:`warehouse_resource`. The loader, the load and run ledgers, the quality gates'
datasources, dbt's target and profile, the KPI and mart reads of the report all take it; no module outside
``flows.warehouse`` opens DuckDB or Snowflake itself (the import contract in pyproject.toml checks it).

Sessions are short: opened per call and closed at once, so dbt, the gates and publishing take turns on a DuckDB
file (one writer process per file). SQL passed to a session is written once for both warehouses: ``?``
placeholders, lower-case unquoted names, ``information_schema`` for the catalogue, ``case when`` instead of
DuckDB's ``filter``. Snowflake's upper-cased catalogue names are lower-cased on the way out.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from flows.contracts.registry import Registry
    from flows.warehouse.base import Warehouse

Kind = Literal["duckdb", "snowflake"]


class Session(ABC):
    """One open connection: read rows or a frame, or execute a statement (writes need ``write=True``)."""

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Every row of a query."""

    @abstractmethod
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A query's rows as a pandas frame with lower-case column names."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""

    @abstractmethod
    def replace_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        """Create or replace ``schema.table`` with a frame's rows (the schema is created if missing)."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple:
        """The first row of a query."""
        rows = self.rows(sql, params)
        return rows[0] if rows else ()

    def tables(self, schema: str | None = None) -> set[tuple[str, str]]:
        """(schema, table) of every table and view, lower-cased; only those of ``schema`` when given."""
        sql = "select lower(table_schema), lower(table_name) from information_schema.tables"
        rows = self.rows(sql + " where lower(table_schema) = ?", [schema.lower()]) if schema else self.rows(sql)
        return {(s, t) for s, t in rows}

    def has_table(self, schema: str, table: str) -> bool:
        """Whether ``schema.table`` exists."""
        return (schema.lower(), table.lower()) in self.tables(schema)

    def columns(self, schema: str | None = None, table: str | None = None) -> dict[tuple[str, str], dict[str, str]]:
        """Column names (lower-cased) and catalogue types by (schema, table), in table order."""
        where, params = ["lower(table_schema) <> 'information_schema'"], []
        if schema:
            where.append("lower(table_schema) = ?")
            params.append(schema.lower())
        if table:
            where.append("lower(table_name) = ?")
            params.append(table.lower())
        sql = (
            "select lower(table_schema), lower(table_name), lower(column_name), data_type"  # noqa: S608
            f" from information_schema.columns where {' and '.join(where)}"
            " order by table_schema, table_name, ordinal_position"
        )
        rows = self.rows(sql, params)
        columns: dict[tuple[str, str], dict[str, str]] = {}
        for s, t, column, data_type in rows:
            columns.setdefault((s, t), {})[column] = data_type
        return columns


class WarehouseResource(ABC):
    """The warehouse every stage of a run uses (see the module's docstring)."""

    kind: Kind
    #: dbt's target in dbt_project/profiles.yml for this warehouse.
    dbt_target: str
    #: dbt node selections this warehouse cannot run (``--exclude`` arguments of the build); none on a real one.
    dbt_excludes: tuple[str, ...] = ()

    @property
    @abstractmethod
    def label(self) -> str:
        """What to call the warehouse in messages (a path, or account and database: never a secret)."""

    @property
    @abstractmethod
    def lock_path(self) -> Path:
        """The local file whose lock one run holds from start to end (``flows.locking``)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether there is a warehouse to read yet (a DuckDB file is created by the first load)."""

    @abstractmethod
    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A short session; DuckDB opens the file read-only unless ``write``."""

    @abstractmethod
    def loader(self, registry: Registry | None = None) -> Warehouse:
        """The load backend (``flows.warehouse.load_batch`` takes it) for one batch; close it when done."""

    @abstractmethod
    def dbt_env(self) -> dict[str, str]:
        """Environment variables dbt's profile reads for this warehouse (DBT_TARGET and the connection)."""

    @abstractmethod
    def ref(self) -> dict[str, str | None]:
        """A JSON-safe reference (no secret) that :func:`as_resource` turns back into this resource: what the
        pipeline hands its subflows as a parameter."""


class DuckDBResource(WarehouseResource):
    """The embedded DuckDB warehouse file of the data home."""

    kind: Kind = "duckdb"
    dbt_target = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"DuckDBResource({str(self.path)!r})"

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.exists()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        import duckdb

        from flows.warehouse.errors import WarehouseBusyError

        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = duckdb.connect(str(self.path), read_only=not write)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise WarehouseBusyError(
                f"the warehouse {self.path} is being written by another process; try again when it is done"
            ) from None
        with connection:
            connection.execute("set TimeZone = 'UTC'")
            yield _DuckDBSession(connection)

    def loader(self, registry: Registry | None = None) -> Warehouse:
        from flows.warehouse.duckdb_backend import DuckDBWarehouse

        return DuckDBWarehouse(self.path)

    def dbt_env(self) -> dict[str, str]:
        return {"DBT_TARGET": self.dbt_target, "HOSPITAL_WAREHOUSE_PATH": str(self.path)}

    def ref(self) -> dict[str, str | None]:
        return {"kind": self.kind, "path": str(self.path)}

    @property
    def connection_string(self) -> str:
        """The file for SQLAlchemy-based readers (GX's DuckDB datasource)."""
        return str(self.path)


class _DuckDBSession(Session):
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.connection.execute(sql, list(params)).fetchall()

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        frame = self.connection.execute(sql, list(params)).df()
        frame.columns = [str(c).lower() for c in frame.columns]
        return frame

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.connection.execute(sql, list(params))

    def replace_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        self.connection.execute(f"create schema if not exists {schema}")
        self.connection.register("_frame", frame)
        try:
            self.connection.execute(f"create or replace table {schema}.{table} as select * from _frame")  # noqa: S608
        finally:
            self.connection.unregister("_frame")


class SnowflakeResource(WarehouseResource):
    """A Snowflake account and database, reached through a prefect-snowflake block or ``SNOWFLAKE_*`` variables.

    ``connect`` opens a DB-API connection (``flows.warehouse.snowflake_connect``); ``home`` is the data home,
    where the run's lock file lives (the lock serialises runs started from this machine or its workers' volume).
    """

    kind: Kind = "snowflake"
    dbt_target = "snowflake"

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        home: Path,
        account: str,
        database: str | None,
        block_name: str | None = None,
        emulator: bool = False,
    ) -> None:
        self.connect = connect
        self.home = Path(home)
        self.account = account
        self.database = database
        self.block_name = block_name
        self.emulator = emulator
        if emulator:  # EMULATOR GAP: dbt's unit tests create database-qualified TEMPORARY tables fakesnow refuses
            self.dbt_excludes = ("resource_type:unit_test",)

    def __repr__(self) -> str:
        return f"SnowflakeResource(account={self.account!r}, database={self.database!r})"

    @property
    def label(self) -> str:
        return f"Snowflake account {self.account}, database {self.database or '(default)'}"

    @property
    def lock_path(self) -> Path:
        return self.home / f"snowflake-{self.account}-{self.database or 'default'}.lock".lower()

    def exists(self) -> bool:
        return True

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        connection = self.connect()
        try:
            yield _SnowflakeSession(connection)
        finally:
            connection.close()

    def loader(self, registry: Registry | None = None) -> Warehouse:
        from flows.warehouse.snowflake_backend import SnowflakeWarehouse

        return SnowflakeWarehouse(self.connect(), registry=registry, emulator=self.emulator)

    def dbt_env(self) -> dict[str, str]:
        """DBT_TARGET=snowflake and the variables profiles.yml reads. With a block, its values are exported to
        dbt's process environment only (never logged: the password goes in ``DBT_ENV_SECRET_*``, which dbt
        scrubs from its logs and artifacts)."""
        env = {"DBT_TARGET": self.dbt_target}
        if self.block_name:
            from flows.warehouse.snowflake_connect import params_from_block

            env.update(params_from_block(self.block_name).dbt_env())
        return env

    def ref(self) -> dict[str, str | None]:
        return {"kind": self.kind, "home": str(self.home), "block": self.block_name}


class _SnowflakeSession(Session):
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self.connection.cursor()
        if params:
            # The connector's default paramstyle is pyformat: %s placeholders, and a literal % doubled.
            cursor.execute(_pyformat(sql), tuple(params))
        else:
            cursor.execute(sql)
        return cursor

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(row) for row in self._cursor(sql, params).fetchall()]

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        import pandas as pd

        cursor = self._cursor(sql, params)
        names = [d[0].lower() for d in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=names)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor(sql, params)

    def replace_table(self, schema: str, table: str, frame: pd.DataFrame) -> None:
        from snowflake.connector.pandas_tools import write_pandas

        self._cursor(f"create schema if not exists {schema}", ())
        write_pandas(self.connection, frame, table.upper(), schema=schema.upper(), auto_create_table=True,
                     overwrite=True, quote_identifiers=False)  # fmt: skip


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?|%")


def _pyformat(sql: str) -> str:
    """``?`` placeholders outside string literals as ``%s``; ``%`` doubled (pyformat's escape)."""
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%" if m.group() == "%" else
                            m.group().replace("%", "%%"), sql)  # fmt: skip


def warehouse_resource(
    kind: str,
    *,
    duckdb_path: Path,
    home: Path,
    snowflake_block: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> WarehouseResource:
    """The configured warehouse (callers pass what ``Settings`` says: ``Settings().resource()`` does).

    Snowflake connects lazily, per session: a block named ``snowflake_block``, else ``SNOWFLAKE_*`` variables
    (docs/snowflake.md). Configuration errors (a missing variable or block) are raised here, naming the variables.
    """
    if kind == "duckdb":
        return DuckDBResource(duckdb_path)
    if kind != "snowflake":
        raise ValueError(f"unknown warehouse {kind!r}: set HOSPITAL_WAREHOUSE to duckdb or snowflake")
    from flows.warehouse.snowflake_connect import (
        connection_from_block,
        connection_from_env,
        params_from_block,
        params_from_env,
    )

    env = dict(os.environ if environ is None else environ)
    # SNOWFLAKE_EMULATOR=1: the account is fakesnow (the tests); the loader then avoids what it cannot run.
    emulator = env.get("SNOWFLAKE_EMULATOR", "") not in ("", "0", "false")
    if snowflake_block:
        params = params_from_block(snowflake_block)
        return SnowflakeResource(lambda: connection_from_block(snowflake_block), home=home, account=params.account,
                                 database=params.database, block_name=snowflake_block, emulator=emulator)  # fmt: skip
    params = params_from_env(env)
    return SnowflakeResource(lambda: connection_from_env(env), home=home, account=params.account,
                             database=params.database, emulator=emulator)  # fmt: skip


def as_resource(warehouse: WarehouseResource | Mapping[str, str | None] | Path | str) -> WarehouseResource:
    """A resource from a resource, its :meth:`~WarehouseResource.ref`, or a DuckDB file's path."""
    if isinstance(warehouse, WarehouseResource):
        return warehouse
    if isinstance(warehouse, Mapping):
        if warehouse.get("kind") == "snowflake":
            home = Path(warehouse.get("home") or ".")
            return warehouse_resource("snowflake", duckdb_path=home / "warehouse.duckdb", home=home,
                                      snowflake_block=warehouse.get("block"))  # fmt: skip
        return DuckDBResource(Path(str(warehouse["path"])))
    return DuckDBResource(Path(warehouse))
