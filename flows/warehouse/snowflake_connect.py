"""Connecting to Snowflake: from environment variables or a prefect-snowflake block. Secrets never leave here.

The password is read from ``DBT_ENV_SECRET_SNOWFLAKE_PASSWORD`` first (dbt reads the same variable with
``env_var()`` and scrubs ``DBT_ENV_SECRET_*`` values from its logs), else ``SNOWFLAKE_PASSWORD``. Messages
name the variables, never their values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flows.warehouse.errors import WarehouseConfigError

if TYPE_CHECKING:
    from snowflake.connector import SnowflakeConnection

    from flows.contracts.registry import Registry
    from flows.warehouse.snowflake_backend import SnowflakeWarehouse

PASSWORD_VARS = ("DBT_ENV_SECRET_SNOWFLAKE_PASSWORD", "SNOWFLAKE_PASSWORD")
_REQUIRED = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER")
_OPTIONAL = {
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
    "database": "SNOWFLAKE_DATABASE",
}
#: Every session runs in UTC, so a TIMESTAMP_NTZ written to a TIMESTAMP_TZ column is read as UTC.
SESSION_PARAMETERS = {"TIMEZONE": "UTC", "QUERY_TAG": "hospital-loader"}


class SnowflakeConfigError(WarehouseConfigError):
    """The Snowflake connection is not configured or refused; the message names variables, not values."""


@dataclass(frozen=True)
class SnowflakeParams:
    """Connection parameters. ``repr`` and ``str`` never show the password."""

    account: str
    user: str
    password: str = field(repr=False)
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema: str = "RAW"

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect``."""
        kwargs = {"account": self.account, "user": self.user, "password": self.password, "schema": self.schema}
        kwargs.update({k: v for k in _OPTIONAL if (v := getattr(self, k))})
        return {**kwargs, "session_parameters": dict(SESSION_PARAMETERS)}


def params_from_env(environ: Mapping[str, str] | None = None) -> SnowflakeParams:
    """Connection parameters from ``SNOWFLAKE_*`` variables (``environ`` defaults to the process env)."""
    env = os.environ if environ is None else environ
    missing = [name for name in _REQUIRED if not env.get(name)]
    password = next((env[name] for name in PASSWORD_VARS if env.get(name)), None)
    if password is None:
        missing.append(" or ".join(PASSWORD_VARS))
    if missing:
        raise SnowflakeConfigError(
            f"Snowflake is not configured: set {', '.join(missing)} (see docs/snowflake.md), "
            "or load a prefect-snowflake block with connection_from_block(), or set HOSPITAL_WAREHOUSE=duckdb"
        )
    optional = {key: env.get(var) or None for key, var in _OPTIONAL.items()}
    return SnowflakeParams(env["SNOWFLAKE_ACCOUNT"], env["SNOWFLAKE_USER"], password, **optional)


def connection_from_env(environ: Mapping[str, str] | None = None) -> SnowflakeConnection:
    """Open a connection from ``SNOWFLAKE_ACCOUNT``, ``SNOWFLAKE_USER``, the password variable and the optional
    ``SNOWFLAKE_ROLE``, ``SNOWFLAKE_WAREHOUSE``, ``SNOWFLAKE_DATABASE``."""
    params = params_from_env(environ)
    return _connect(params.connect_kwargs(), f"account {params.account} as user {params.user}")


def connection_from_block(block_name: str) -> SnowflakeConnection:
    """Open a connection from a saved prefect-snowflake ``SnowflakeConnector`` block, else a
    ``SnowflakeCredentials`` block of that name (database and warehouse then come from the environment)."""
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    try:
        connector = SnowflakeConnector.load(block_name)
    except (ValueError, KeyError, RuntimeError):
        connector = None
    extra = {"session_parameters": dict(SESSION_PARAMETERS)}
    where = f"prefect block {block_name!r}"
    if connector is not None:
        return _guard(lambda: connector.get_connection(**extra), where)
    try:
        credentials = SnowflakeCredentials.load(block_name)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise SnowflakeConfigError(
            f"no SnowflakeConnector or SnowflakeCredentials block named {block_name!r}; create one "
            "(docs/snowflake.md) or use environment variables"
        ) from exc
    env = {k: v for k, var in _OPTIONAL.items() if k != "role" and (v := os.environ.get(var))}
    return _guard(lambda: credentials.get_client(schema="RAW", **env, **extra), where)


def _connect(kwargs: dict[str, Any], where: str) -> SnowflakeConnection:
    import snowflake.connector

    return _guard(lambda: snowflake.connector.connect(**kwargs), where)


def _guard(open_connection: Any, where: str) -> SnowflakeConnection:
    """Open a connection; on failure re-raise with the error class and code only (no parameters, no text)."""
    try:
        return open_connection()
    except Exception as exc:
        code = getattr(exc, "errno", None)
        raise SnowflakeConfigError(
            f"cannot connect to Snowflake ({where}): {type(exc).__name__}"
            + (f" {code}" if code else "")
            + "; check the account, user, password variable and network policy (docs/snowflake.md)"
        ) from None


def open_snowflake(
    *,
    connection: SnowflakeConnection | None = None,
    block_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    dry_run: bool = False,
    on_error: Literal["continue", "abort"] = "continue",
    registry: Registry | None = None,
) -> SnowflakeWarehouse:
    """The Snowflake backend of the warehouse I/O layer, on ``connection``, else a prefect-snowflake block
    named ``block_name``, else the ``SNOWFLAKE_*`` environment variables. Pass the ``registry`` being loaded
    so file formats and raw tables are created before the batch transaction (no DDL inside it)."""
    from flows.warehouse.snowflake_backend import SnowflakeWarehouse

    if connection is None:
        connection = connection_from_block(block_name) if block_name else connection_from_env(environ)
    return SnowflakeWarehouse(connection, dry_run=dry_run, on_error=on_error, registry=registry)
