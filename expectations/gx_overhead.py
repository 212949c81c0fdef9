"""Two of GX 1.24.1's fixed costs per validation, removed while a gate runs (same results, less Python).

Profiling the raw and marts gates (``benchmarks/gates_bench.py``; cProfile of ``run_checkpoint``) showed GX's own
bookkeeping well ahead of the SQL it sends:

* **kwargs built from scratch per key.** ``Expectation._get_domain_kwargs``, ``_get_success_kwargs`` and
  ``_get_success_kwarg`` rebuild the expectation's whole ``configuration`` (a pydantic ``dict()`` and a new
  ``ExpectationConfiguration``) once for *every key* they read: ~16,600 builds for the raw gate's 207
  expectations, a fifth of its time. :func:`kwargs_read_once` swaps in the same three methods reading one
  ``configuration`` per call. Each call still builds its own, so no caller shares (or could change) another's.
* **the project configuration written after every asset.** An ephemeral context serializes its whole
  configuration to YAML after every asset and every batch definition added (51 times for the marts gate, each
  longer than the last), into an in-memory store nothing reads during a gate. :func:`config_saved_once` defers
  those writes and saves once at the end, so the context ends in the same state.

Both are undone when their ``with`` block ends, and both are written against GX 1.24.1's code
(``expectations.duckdb_support.PINNED_VERSIONS`` stops any other version); the expectations tests check that every
verdict and count is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from great_expectations.data_context import AbstractDataContext
from great_expectations.expectations.expectation import Expectation

__all__ = ["config_saved_once", "kwargs_read_once"]

logger = logging.getLogger("great_expectations.expectations.expectation")  # GX's, for its own warning below


def _domain_kwargs(self: Expectation) -> dict[str, Any]:
    """GX's ``_get_domain_kwargs``, reading the configuration once (every domain key is always present)."""
    kwargs = self.configuration.kwargs
    return {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}


def _success_kwargs(self: Expectation) -> dict[str, Any]:
    """GX's ``_get_success_kwargs``, reading the configuration once."""
    domain_kwargs = self._get_domain_kwargs()
    kwargs = self.configuration.kwargs
    success_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}
    success_kwargs.update(domain_kwargs)
    return success_kwargs


def _success_kwarg(self: Expectation, key: str, default: Any = None) -> Any:
    """GX's ``_get_success_kwarg``, reading the configuration once."""
    kwargs = self.configuration.kwargs
    if key in kwargs:
        return kwargs[key]
    field = self.__fields__.get(key)
    if field is not None:
        return field.default if not field.required else default
    logger.warning(f'_get_success_kwarg called with key "{key}", but it is not a known field of {type(self).__name__}')
    return default


_FASTER = {
    "_get_domain_kwargs": _domain_kwargs,
    "_get_success_kwargs": _success_kwargs,
    "_get_success_kwarg": _success_kwarg,
}


@contextmanager
def kwargs_read_once() -> Iterator[None]:
    """While the block runs, expectations read their configuration once per kwargs lookup, not once per key."""
    originals = {name: Expectation.__dict__[name] for name in _FASTER}
    for name, method in _FASTER.items():
        setattr(Expectation, name, method)
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(Expectation, name, method)


@contextmanager
def config_saved_once(context: AbstractDataContext) -> Iterator[None]:
    """While the block runs, ``context`` does not re-save its project configuration; it saves once at the end."""
    saves: list[None] = []
    context._save_project_config = lambda: saves.append(None)  # type: ignore[method-assign]
    try:
        yield
    finally:
        del context._save_project_config  # the class's method again
    if saves:
        context._save_project_config()
