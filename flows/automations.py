"""The automations of ``deployments/automations.yaml`` on a Prefect server or Cloud workspace: read, bound to a
notification block, and applied by name (created once, updated after), for ``hospital automations apply``.

The file holds no block id and no address: the block is named when applying, as ``<block-type-slug>/<name>``
(the form ``prefect block ls`` prints), and its id on this server is filled into every send-notification action.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

AUTOMATIONS_YAML = Path(__file__).resolve().parents[1] / "deployments" / "automations.yaml"
NOTIFY_ACTION = "send-notification"


class AutomationFileError(ValueError):
    """automations.yaml is not a valid list of automations; the message names the automation and the field."""


class NotificationBlockError(LookupError):
    """The named block does not exist on the server or cannot send notifications."""


class DuplicateAutomationError(RuntimeError):
    """Several automations on the server share a name from automations.yaml; the message lists their ids."""


@dataclass(frozen=True)
class Applied:
    """What ``apply_automations`` did to one automation."""

    name: str
    action: str  # "created" or "updated"
    automation_id: UUID


def read_automations(path: Path = AUTOMATIONS_YAML) -> list[dict[str, Any]]:
    """The ``automations`` list of the file, each with a name, a trigger and actions."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    automations = document.get("automations")
    if not isinstance(automations, list) or not automations:
        raise AutomationFileError(f"{path}: no `automations:` list")
    for spec in automations:
        missing = [key for key in ("name", "trigger", "actions") if not spec.get(key)]
        if missing:
            raise AutomationFileError(f"{path}: automation {spec.get('name', '?')!r} lacks {', '.join(missing)}")
        for action in spec["actions"]:
            if action.get("type") == NOTIFY_ACTION and "block_document_id" in action:
                raise AutomationFileError(
                    f"{path}: automation {spec['name']!r} names a block_document_id; block ids differ per server "
                    "and are filled in by `hospital automations apply --block`: remove it"
                )
    return automations


def bind(specs: list[dict[str, Any]], block_document_id: UUID, path: Path = AUTOMATIONS_YAML) -> list[Any]:
    """The automations as Prefect models, each send-notification action sending through ``block_document_id``."""
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    models = []
    for spec in specs:
        actions = [
            {**action, "block_document_id": str(block_document_id)} if action.get("type") == NOTIFY_ACTION else action
            for action in spec["actions"]
        ]
        try:
            models.append(AutomationCore.model_validate({**spec, "actions": actions}))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise AutomationFileError(f"{path}: automation {spec['name']!r}: {problems}") from None
    return models


def notification_block_id(client: Any, reference: str) -> UUID:
    """The id of the notification block ``<block-type-slug>/<name>`` on the client's server."""
    from prefect.exceptions import ObjectNotFound

    slug, _, name = reference.partition("/")
    if not slug or not name or "/" in name:
        raise NotificationBlockError(
            f"block {reference!r} is not <block-type-slug>/<name> (e.g. slack-webhook/hospital-alerts; "
            "`prefect block ls` lists them)"
        )
    try:
        document = client.read_block_document_by_name(name=name, block_type_slug=slug, include_secrets=False)
    except ObjectNotFound:
        raise NotificationBlockError(
            f"no block {reference!r} on this server: create it first (docs/pipeline.md, Notifications) or pick one "
            "from `prefect block ls`"
        ) from None
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise NotificationBlockError(f"block {reference!r} cannot send notifications (its type is {slug!r})")
    return document.id


def apply_automations(client: Any, automations: list[Any]) -> list[Applied]:
    """Create each automation, or update the one of the same name: applying twice leaves one of each."""
    applied = []
    for automation in automations:
        existing = [a for a in client.read_automations_by_name(automation.name) if a.name == automation.name]
        if len(existing) > 1:
            ids = ", ".join(str(a.id) for a in existing)
            raise DuplicateAutomationError(
                f"{len(existing)} automations are named {automation.name!r} ({ids}): keep one, delete the others "
                "with `prefect automation delete --id <id>`, then apply again"
            )
        if existing:
            client.update_automation(existing[0].id, automation)
            applied.append(Applied(automation.name, "updated", existing[0].id))
        else:
            applied.append(Applied(automation.name, "created", client.create_automation(automation)))
    return applied
