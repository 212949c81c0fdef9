"""A clean end of every process that used DuckDB: no ``nanobind: leaked ...`` lines at interpreter exit.

duckdb 2.0's Python module is built with nanobind, which reports every DuckDB object still alive when its own
state is torn down. Module constants count: with great_expectations and duckdb-engine imported, Python's module
teardown reaches ``_duckdb`` before ``duckdb.sqltypes`` and ``duckdb.value.constant``, so their 27 type constants
(and, after a run, cached connection methods) are reported as leaked on every ``hospital`` command, worker flow
run and test process. Nothing leaks while the process runs; the objects are just freed in the wrong order.

``release_duckdb_at_exit`` (called when the ``flows`` package is imported: by the CLI, by a worker's flow run, by
tests) registers one ``atexit`` hook that drops DuckDB's Python objects while DuckDB can still free them: the modules'
globals are cleared and the garbage collector run. stderr is untouched, so any other message still shows.
"""

from __future__ import annotations

import atexit
import gc
import sys

_registered = False


def _release_duckdb() -> None:
    """Free DuckDB's module-level objects before the interpreter tears the extension down."""
    gc.collect()  # connections and relations in reference cycles close first, while their module is whole
    for name in list(sys.modules):
        if name in ("duckdb", "_duckdb") or name.startswith(("duckdb.", "_duckdb.")):
            module = sys.modules.get(name)
            if module is not None:
                vars(module).clear()
    gc.collect()


def release_duckdb_at_exit() -> None:
    """Register the exit hook once per process."""
    global _registered
    if not _registered:
        atexit.register(_release_duckdb)
        _registered = True
