"""A DuckDB datasource for GX Core, so expectations run as SQL inside DuckDB (pushdown) instead of in pandas.

GX 1.24.1 has no DuckDB datasource. Its generic SQL datasource on duckdb-engine fails every expectation with
``MetricResolutionError: list index out of range``: for dialects it does not know, the execution engine opens a
connection per query and closes it *before* the caller fetches the rows, and a DuckDB result dies with its
connection. GX already keeps one persisted connection for SQLite, SQL Server, BigQuery and Databricks; this module
does the same for DuckDB, and tells GX to treat DuckDB as the PostgreSQL dialect it derives from (duckdb-engine's
dialect subclasses SQLAlchemy's psycopg2 dialect; DuckDB's ``~`` is PostgreSQL's regex search), so regex
expectations compile. Both are overrides of documented extension points (a fluent datasource subclass and its
execution engine), tested in ``tests/integration/test_expectations_duckdb.py`` and pinned to the versions below:
any other version stops with :class:`UnsupportedVersionError` instead of validating wrongly.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource
from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine
from sqlalchemy.dialects import postgresql

#: The versions this fix was written and tested against (see requirements.lock).
PINNED_VERSIONS = {"great-expectations": "1.24.1", "duckdb-engine": "0.17.0"}


class UnsupportedVersionError(RuntimeError):
    """great-expectations or duckdb-engine is not the version the DuckDB fix was tested with."""


def check_versions(
    pins: dict[str, str] = PINNED_VERSIONS,
    fix: str = "expectations/duckdb_support.py keeps GX's DuckDB connection open and maps its dialect",
    test: str = "tests/integration/test_expectations_duckdb.py",
) -> None:
    """Stop with a clear error unless the installed packages are the ``pins`` the ``fix`` was tested with."""
    problems = []
    for package, pinned in pins.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            problems.append(f"{package} {installed} (tested: {pinned})")
    if problems:
        raise UnsupportedVersionError(
            f"{fix}; it is tested only with {', '.join(f'{p}=={v}' for p, v in pins.items())}, "
            f"but found {'; '.join(problems)}. "
            f"Install the pinned versions (requirements.lock), or re-run {test} against the new versions and "
            "update PINNED_VERSIONS."
        )


#: Every SQLAlchemy engine on a DuckDB file that has connected in this process (weakly held), whoever created it.
_CONNECTED_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


@sa.event.listens_for(sa.Engine, "engine_connect")
def _record_duckdb_engine(connection: sa.Connection) -> None:
    # An engine that never connected holds no DuckDB connection, so these are all that can keep the file open.
    if connection.engine.url.get_backend_name() == "duckdb":
        _CONNECTED_ENGINES.add(connection.engine)


def connected_engines(path: str) -> list[sa.Engine]:
    """The SQLAlchemy engines of this process that have connected to the DuckDB file ``path`` (GX's, or anyone's).

    Recorded as they connect (an ``engine_connect`` listener), so finding them costs nothing: a scan of the garbage
    collector's objects took 0.4-0.7 s per gate in a pipeline process holding GX, Prefect and dbt.
    """
    from pathlib import Path

    target = Path(path).resolve()
    found = []
    for engine in list(_CONNECTED_ENGINES):
        database = engine.url.database or ""
        if database and Path(database).resolve() == target:
            found.append(engine)
    return found


#: Every DuckDB execution engine not yet closed (weakly held: a collected engine has released its connection).
_OPEN_ENGINES: weakref.WeakSet[DuckDBExecutionEngine] = weakref.WeakSet()


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """GX's SQL execution engine with one persisted DuckDB connection (results are fetched before it closes)."""

    def __init__(self, *args: Any, connection_string: str | None = None, **kwargs: Any) -> None:
        engine_kwargs = {key: kwargs.pop(key) for key in ("connect_args",) if key in kwargs}
        # One DBAPI connection for the whole validation: StaticPool hands the same one to every caller.
        engine = sa.create_engine(connection_string, poolclass=sa.pool.StaticPool, **engine_kwargs)
        super().__init__(*args, engine=engine, **kwargs)
        # duckdb-engine's dialect is a PostgreSQL dialect: its types and regex operator apply.
        self.dialect_module = postgresql
        _OPEN_ENGINES.add(self)

    @contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        """The persisted connection (GX closes per-query connections before fetching; DuckDB results die)."""
        if self._connection is None:
            self._connection = self.engine.connect()
        yield self._connection

    def close(self) -> None:
        """Close the connection and the engine, releasing the DuckDB file."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class DuckDBDatasource(SQLDatasource):
    """A fluent SQL datasource on a DuckDB file (``context.data_sources.add_duckdb(...)``)."""

    type: Literal["duckdb"] = "duckdb"  # type: ignore[assignment]
    _pinned: ClassVar[dict[str, str]] = PINNED_VERSIONS

    @property
    def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
        """The persisted-connection engine."""
        return DuckDBExecutionEngine

    def close(self) -> None:
        """Release every DuckDB connection GX opened (its execution engine's and the connection test's).

        DuckDB refuses a second connection to the file with another configuration (a writer, or a plain
        ``duckdb.connect``) while any of these is open, so the checkpoint calls this when it is done.
        """
        # GX may build more than one execution engine per datasource (one per changed configuration, and on
        # copies of the datasource): close every engine on this file, not only the current one.
        url = sa.make_url(
            self.connection_string if isinstance(self.connection_string, str) else str(self.connection_string)
        )
        for engine in list(_OPEN_ENGINES):
            if engine.engine.url == url:
                engine.close()
                _OPEN_ENGINES.discard(engine)
        if self._engine is not None:
            self._engine.dispose()


def duckdb_connection_string(path: str) -> str:
    """SQLAlchemy URL of a DuckDB file."""
    return f"duckdb:///{path}"
