"""A Snowflake datasource for GX Core on a connection the warehouse I/O layer opens, so expectations run in Snowflake.

GX 1.24.1's own ``SnowflakeDatasource`` needs ``snowflake-sqlalchemy`` and a connection URL holding the password.
Credentials belong in a Prefect block or the environment, not in a URL GX keeps in its configuration. The
datasource here builds its engine with a ``creator``: the caller's function returning a DB-API connection (for
example ``flows.warehouse.snowflake_connect.connection_from_env``), held in this process only.

``snowflake-sqlalchemy`` 1.11.1 is the newest release for ``snowflake-connector-python`` 4.x (which fakesnow needs);
it imports on SQLAlchemy 2.0 (pinned below 2.1, which breaks Prefect 3.8's scheduler and renamed the ORM class
``ORMSelectCompileState`` that 1.11.1 subclasses).

Pinned like :mod:`expectations.duckdb_support`: any other version stops with :class:`UnsupportedVersionError`.
Tested on fakesnow in ``tests/integration/test_expectations_snowflake.py``.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import sqlalchemy as sa
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource
from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine

from expectations.duckdb_support import UnsupportedVersionError, check_versions

#: The versions the Snowflake datasource was written and tested against.
PINNED_VERSIONS = {"great-expectations": "1.24.1", "snowflake-sqlalchemy": "1.11.1", "sqlalchemy": "2.0.59"}
#: Placeholder URL: the dialect comes from it, the connection from the creator.
SNOWFLAKE_URL = "snowflake://"

__all__ = [
    "PINNED_VERSIONS",
    "SnowflakeConnectionDatasource",
    "UnsupportedVersionError",
    "check_snowflake_versions",
    "enable_snowflake_dialect",
    "register_connector",
]

#: Connection factories by key (the datasource's configuration holds the key, never a credential).
_CONNECTORS: dict[str, Callable[[], Any]] = {}
_KEYS = itertools.count(1)
_OPEN_ENGINES: weakref.WeakSet[SnowflakeExecutionEngine] = weakref.WeakSet()


def check_snowflake_versions() -> None:
    """Stop with a clear error unless GX, snowflake-sqlalchemy and SQLAlchemy are the pinned versions."""
    check_versions(
        PINNED_VERSIONS,
        "expectations/snowflake_support.py imports snowflake-sqlalchemy and builds GX's engine "
        "from the project's Snowflake connection",
        "tests/integration/test_expectations_snowflake.py",
    )


def enable_snowflake_dialect() -> None:
    """Import snowflake-sqlalchemy, which registers its ``snowflake`` dialect with SQLAlchemy."""
    import snowflake.sqlalchemy  # noqa: F401 - registers the `snowflake` dialect with SQLAlchemy


def register_connector(connect: Callable[[], Any]) -> str:
    """Keep ``connect`` (returns a DB-API Snowflake connection) for this process; returns the key to configure."""
    key = f"connector-{next(_KEYS)}"
    _CONNECTORS[key] = connect
    return key


def _engine(connector_key: str) -> sa.Engine:
    try:
        connect = _CONNECTORS[connector_key]
    except KeyError:
        raise LookupError(
            f"no Snowflake connector {connector_key!r} in this process; create the datasource with "
            "register_connector(...) in the process that validates"
        ) from None
    # One connection for the whole validation (StaticPool), opened by the caller's function.
    return sa.create_engine(SNOWFLAKE_URL, creator=connect, poolclass=sa.pool.StaticPool)


class SnowflakeExecutionEngine(SqlAlchemyExecutionEngine):
    """GX's SQL execution engine on one Snowflake connection from the registered connector."""

    def __init__(self, *args: Any, connection_string: str | None = None, **kwargs: Any) -> None:
        key = kwargs.pop("connector_key")
        super().__init__(*args, engine=_engine(key), **kwargs)
        _OPEN_ENGINES.add(self)
        self._connector_key = key

    @contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        """The persisted connection (one session: no reconnect per query)."""
        if self._connection is None:
            self._connection = self.engine.connect()
        yield self._connection

    def close(self) -> None:
        """Close the connection and the engine."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class SnowflakeConnectionDatasource(SQLDatasource):
    """A fluent SQL datasource on Snowflake (``context.data_sources.add_snowflake_connection(...)``).

    Configure it with ``connection_string=SNOWFLAKE_URL`` and ``kwargs={"connector_key": register_connector(f)}``.
    """

    type: Literal["snowflake_connection"] = "snowflake_connection"  # type: ignore[assignment]

    @property
    def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
        """The creator-built, persisted-connection engine."""
        return SnowflakeExecutionEngine

    def _create_engine(self) -> sa.Engine:
        # Used by GX's connection test: the same creator, never a URL with credentials.
        return _engine(self.kwargs["connector_key"])

    def close(self) -> None:
        """Close every connection GX opened through this datasource's connector."""
        key = self.kwargs.get("connector_key")
        for engine in list(_OPEN_ENGINES):
            if engine._connector_key == key:
                engine.close()
                _OPEN_ENGINES.discard(engine)
        if self._engine is not None:
            self._engine.dispose()
        _CONNECTORS.pop(str(key), None)
