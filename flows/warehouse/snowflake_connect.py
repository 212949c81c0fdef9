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
#: Where the account is reached when not at its default address (a private link or proxy; fakesnow's server in
#: the tests). dbt's profile reads the same variables.
_ENDPOINT = {"host": "SNOWFLAKE_HOST", "port": "SNOWFLAKE_PORT", "protocol": "SNOWFLAKE_PROTOCOL"}
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
    host: str | None = None
    port: int | None = None
    protocol: str | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect``."""
        kwargs = {"account": self.account, "user": self.user, "password": self.password, "schema": self.schema}
        kwargs.update({k: v for k in (*_OPTIONAL, *_ENDPOINT) if (v := getattr(self, k))})
        return {**kwargs, "session_parameters": dict(SESSION_PARAMETERS)}

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt_project/profiles.yml reads for its ``snowflake`` target. The password goes in
        ``DBT_ENV_SECRET_SNOWFLAKE_PASSWORD``, whose value dbt scrubs from its logs and artifacts."""
        env = {"SNOWFLAKE_ACCOUNT": self.account, "SNOWFLAKE_USER": self.user,
               "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD": self.password}  # fmt: skip
        env.update({var: str(v) for k, var in {**_OPTIONAL, **_ENDPOINT}.items() if (v := getattr(self, k))})
        return env


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
    endpoint: dict[str, Any] = {key: env.get(var) or None for key, var in _ENDPOINT.items()}
    if endpoint["port"] is not None:
        try:
            endpoint["port"] = int(endpoint["port"])
        except ValueError:
            raise SnowflakeConfigError("SNOWFLAKE_PORT must be a port number") from None
    return SnowflakeParams(env["SNOWFLAKE_ACCOUNT"], env["SNOWFLAKE_USER"], password, **optional, **endpoint)


def params_from_block(block_name: str) -> SnowflakeParams:
    """Connection parameters from a saved prefect-snowflake ``SnowflakeConnector`` block (its credentials,
    database and warehouse), else a ``SnowflakeCredentials`` block (database and warehouse from the environment).

    Only password authentication is handed to dbt this way; a block with a key pair or another authenticator
    is refused with what to do (dbt's profile then reads its own variables, docs/snowflake.md).
    """
    connector, credentials = _load_block(block_name)
    database = connector.database if connector is not None else None
    warehouse = connector.warehouse if connector is not None else None
    if credentials.password is None:
        raise SnowflakeConfigError(
            f"block {block_name!r} has no password: the platform hands dbt password credentials only; use "
            "SNOWFLAKE_* variables for key-pair or SSO authentication (docs/snowflake.md)"
        )
    endpoint: dict[str, Any] = {key: os.environ.get(var) or None for key, var in _ENDPOINT.items()}
    endpoint["port"] = int(endpoint["port"]) if endpoint["port"] else None
    return SnowflakeParams(
        credentials.account, credentials.user, credentials.password.get_secret_value(), role=credentials.role,
        warehouse=warehouse or os.environ.get("SNOWFLAKE_WAREHOUSE") or None,
        database=database or os.environ.get("SNOWFLAKE_DATABASE") or None, **endpoint,
    )  # fmt: skip


def connection_from_env(environ: Mapping[str, str] | None = None) -> SnowflakeConnection:
    """Open a connection from ``SNOWFLAKE_ACCOUNT``, ``SNOWFLAKE_USER``, the password variable and the optional
    ``SNOWFLAKE_ROLE``, ``SNOWFLAKE_WAREHOUSE``, ``SNOWFLAKE_DATABASE``."""
    params = params_from_env(environ)
    return _connect(params.connect_kwargs(), f"account {params.account} as user {params.user}")


def connection_from_block(block_name: str) -> SnowflakeConnection:
    """Open a connection from a saved prefect-snowflake ``SnowflakeConnector`` block, else a
    ``SnowflakeCredentials`` block of that name (database and warehouse then come from the environment)."""
    where = f"prefect block {block_name!r}"
    if any(os.environ.get(var) for var in _ENDPOINT.values()):
        # A private link, proxy or emulator: the block's credentials, reached at SNOWFLAKE_HOST/PORT/PROTOCOL.
        params = params_from_block(block_name)
        return _connect(params.connect_kwargs(), where)
    connector, credentials = _load_block(block_name)
    extra = {"session_parameters": dict(SESSION_PARAMETERS)}
    if connector is not None:
        return _guard(lambda: connector.get_connection(**extra), where)
    env = {k: v for k, var in _OPTIONAL.items() if k != "role" and (v := os.environ.get(var))}
    return _guard(lambda: credentials.get_client(schema="RAW", **env, **extra), where)


def _load_block(block_name: str) -> tuple[Any, Any]:
    """The saved ``SnowflakeConnector`` block of that name and its credentials, else (None, the
    ``SnowflakeCredentials`` block of that name); a clear error naming the block when there is neither."""
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    try:
        connector = SnowflakeConnector.load(block_name)
        return connector, connector.credentials
    except (ValueError, KeyError, RuntimeError):
        pass
    try:
        return None, SnowflakeCredentials.load(block_name)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise SnowflakeConfigError(
            f"no SnowflakeConnector or SnowflakeCredentials block named {block_name!r}; create one "
            "(docs/snowflake.md) or use environment variables"
        ) from exc


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
