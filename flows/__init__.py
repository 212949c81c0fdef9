"""The runtime: Prefect flows, the ``hospital`` CLI, settings, the source registry and the warehouse I/O layer."""

from flows.shutdown import release_duckdb_at_exit

release_duckdb_at_exit()
