"""The deployments of ``deployments/prefect.yaml`` as runner deployments, for ``hospital serve`` (one process,
schedules included, no work pool or worker). prefect.yaml stays the one definition of schedules and parameters;
this module only reads it.

Served deployments carry their own names (``daily-incremental-served``, ...): a deployment is identified by flow
and name, so serving under the pool deployments' names would replace their entrypoint, pull steps and job
variables (the next worker run then fails), and stopping ``serve`` would pause them. With their own names the two
ways of running coexist on one server: ``serve`` registers and, when it stops, pauses only its own.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Any

import yaml

PREFECT_YAML = Path(__file__).resolve().parent / "prefect.yaml"
REPOSITORY = PREFECT_YAML.parents[1]
#: Appended to a prefect.yaml deployment's name for its served twin.
SERVED_SUFFIX = "-served"
#: Tag of every served deployment (filter on it in the UI).
SERVED_TAG = "served"


class DeploymentFileError(ValueError):
    """deployments/prefect.yaml is missing a field this module needs; the message names the deployment."""


class TimezoneError(ValueError):
    """A time zone name that neither the flows nor Prefect's schedules accept."""


class ServeConflictError(RuntimeError):
    """Serving would take over a deployment that belongs to a work pool; the message names it."""


def check_timezone(name: str) -> str:
    """``name`` when it is an IANA time zone that the flows (zoneinfo) and Prefect's cron schedules accept."""
    from prefect.client.schemas.schedules import is_valid_timezone

    try:
        zoneinfo.ZoneInfo(name)
        known = is_valid_timezone(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        known = False
    if not known:
        raise TimezoneError(f"{name!r} is not an IANA time zone (for example America/Chicago, Europe/Berlin)")
    return name


def read_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` list of a prefect.yaml file (YAML anchors resolved)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    deployments = document.get("deployments") or []
    for spec in deployments:
        missing = [key for key in ("name", "entrypoint") if not spec.get(key)]
        if missing:
            raise DeploymentFileError(f"{path}: deployment {spec.get('name', '?')!r} lacks {', '.join(missing)}")
    return deployments


def served_name(name: str) -> str:
    """The served twin's name of the prefect.yaml deployment ``name``."""
    return f"{name}{SERVED_SUFFIX}"


def runner_deployments(path: Path = PREFECT_YAML, *, timezone: str | None = None) -> list[Any]:
    """One ``RunnerDeployment`` per deployment of ``path``, named ``<name>-served`` and tagged ``served``;
    ``timezone`` overrides the schedules' and flows' zone."""
    from prefect.schedules import Cron

    result = []
    for spec in read_deployments(path):
        flow = _import_flow(spec["entrypoint"])
        parameters = dict(spec.get("parameters") or {})
        if timezone and "timezone" in parameters:
            parameters["timezone"] = timezone
        schedules = [
            Cron(s["cron"], timezone=timezone or s.get("timezone"), active=s.get("active", True))
            for s in spec.get("schedules") or []
        ]
        result.append(
            flow.to_deployment(
                name=served_name(spec["name"]),
                description=spec.get("description"),
                tags=[*(spec.get("tags") or []), SERVED_TAG],
                parameters=parameters,
                schedules=schedules,
                concurrency_limit=spec.get("concurrency_limit"),
            )
        )
    return result


def server_notes(served: list[Any], path: Path = PREFECT_YAML) -> list[str]:
    """Check the server before serving: raise ``ServeConflictError`` when a served name is already a work pool's
    deployment; return one note per prefect.yaml deployment that stays scheduled on a work pool alongside."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    def existing(client: Any, full_name: str) -> Any:
        try:
            return client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return None

    notes = []
    flows = {d.name.removesuffix(SERVED_SUFFIX): d.flow_name for d in served}
    with get_client(sync_client=True) as client:
        for deployment in served:
            full_name = f"{deployment.flow_name}/{deployment.name}"
            twin = existing(client, full_name)
            if twin is not None and twin.work_pool_name:
                raise ServeConflictError(
                    f"deployment {full_name} exists on the server and belongs to work pool "
                    f"{twin.work_pool_name!r}: serving would take it over. Delete it (`prefect deployment delete "
                    f"{full_name}`) or run a worker for it instead of serve"
                )
        for spec in read_deployments(path):
            full_name = f"{flows[spec['name']]}/{spec['name']}"
            pool = existing(client, full_name)
            if pool is None or not pool.work_pool_name or pool.paused:
                continue
            if any(schedule.active for schedule in pool.schedules or []):
                notes.append(
                    f"{full_name} (work pool {pool.work_pool_name}) stays scheduled too: both schedules fire, and "
                    "runs on one warehouse wait for each other (docs/pipeline.md, Operations)"
                )
    return notes


def pause_served(served: list[Any]) -> int:
    """Pause the served deployments that exist on the server (what Prefect's runner does when it stops); returns
    how many. For a serve stopped before its runner started, which then has not paused them itself."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    paused = 0
    with get_client(sync_client=True) as client:
        for deployment in served:
            try:
                found = client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")
            except ObjectNotFound:
                continue
            if not found.paused:
                client.pause_deployment(found.id)
                paused += 1
    return paused


def _import_flow(entrypoint: str) -> Any:
    """The flow object of a ``path/to/module.py:function`` entrypoint, imported as the package module it is.

    Prefect's ``load_flow_from_entrypoint`` executes the file under a throwaway module name; once the process has
    imported that module normally (as any test run or the CLI has), the copy it builds cannot be deployed ("Flows
    defined interactively cannot be deployed"). Importing ``flows.pipeline`` by name gives the one real flow.
    """
    import importlib

    entry_file, function = entrypoint.rsplit(":", 1)
    module_path = Path(entry_file)
    if module_path.suffix != ".py" or module_path.is_absolute():
        raise DeploymentFileError(f"entrypoint {entrypoint!r} is not a relative path/to/module.py:function")
    module = importlib.import_module(".".join(module_path.with_suffix("").parts))
    try:
        return getattr(module, function)
    except AttributeError:
        raise DeploymentFileError(f"entrypoint {entrypoint!r}: {module.__name__} has no {function}") from None
