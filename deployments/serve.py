"""The deployments of ``deployments/prefect.yaml`` as runner deployments, for ``hospital serve`` (one process,
schedules included, no work pool or worker). prefect.yaml stays the one definition of names, schedules and
parameters; this module only reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PREFECT_YAML = Path(__file__).resolve().parent / "prefect.yaml"
REPOSITORY = PREFECT_YAML.parents[1]


class DeploymentFileError(ValueError):
    """deployments/prefect.yaml is missing a field this module needs; the message names the deployment."""


def read_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` list of a prefect.yaml file (YAML anchors resolved)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    deployments = document.get("deployments") or []
    for spec in deployments:
        missing = [key for key in ("name", "entrypoint") if not spec.get(key)]
        if missing:
            raise DeploymentFileError(f"{path}: deployment {spec.get('name', '?')!r} lacks {', '.join(missing)}")
    return deployments


def runner_deployments(path: Path = PREFECT_YAML, *, timezone: str | None = None) -> list[Any]:
    """One ``RunnerDeployment`` per deployment of ``path``; ``timezone`` overrides the schedules' and flows' zone."""
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
                name=spec["name"],
                description=spec.get("description"),
                tags=spec.get("tags"),
                parameters=parameters,
                schedules=schedules,
                concurrency_limit=spec.get("concurrency_limit"),
            )
        )
    return result


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
