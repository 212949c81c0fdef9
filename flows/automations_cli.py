"""``hospital automations apply``: the Prefect automations of deployments/automations.yaml on a lasting Prefect
server or Cloud workspace (PREFECT_API_URL), sending through a notification block named on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="automations",
    help="Prefect automations of the pipeline (deployments/automations.yaml): who hears about a failed run.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.command()
def apply(
    block: Annotated[
        str,
        typer.Option(
            help="Notification block that delivers the messages, as <block-type-slug>/<name> "
            "(e.g. slack-webhook/hospital-alerts; `prefect block ls` lists them)"
        ),
    ],
    file: Annotated[Path | None, typer.Option(help="Automations file [deployments/automations.yaml]")] = None,
) -> None:
    """Create the automations of the file on the server, or update those that exist by name (idempotent).

    Exit code 0 when every automation was created or updated; 2 for a bad file, block or missing PREFECT_API_URL
    (nothing changed); 1 when the server refused or could not be reached.
    """
    from flows.automations import (
        AUTOMATIONS_YAML,
        AutomationFileError,
        DuplicateAutomationError,
        NotificationBlockError,
        apply_automations,
        bind,
        notification_block_id,
        read_automations,
    )

    path = file or AUTOMATIONS_YAML
    try:
        specs = read_automations(path)
    except (OSError, AutomationFileError) as error:
        raise _fail(str(error), EXIT_USAGE) from None
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        raise _fail(
            "PREFECT_API_URL is not set: automations live on a lasting Prefect server or Cloud workspace. Set it "
            "(`prefect config set PREFECT_API_URL=http://<host>:4200/api`) or run `prefect cloud login` first",
            EXIT_USAGE,
        )
    try:
        with get_client(sync_client=True) as client:
            block_id = notification_block_id(client, block)
            applied = apply_automations(client, bind(specs, block_id, path))
    except (NotificationBlockError, AutomationFileError) as error:
        raise _fail(f"{error}; nothing was applied", EXIT_USAGE) from None
    except DuplicateAutomationError as error:
        raise _fail(str(error), EXIT_FAILED) from None
    except Exception as error:  # an unreachable server or a refused request: name the server, not a traceback
        raise _fail(f"{api} did not take the automations ({type(error).__name__}: {error})", EXIT_FAILED) from None
    for entry in applied:
        typer.echo(f"{entry.action} automation {entry.name!r} ({entry.automation_id}), notifying through {block}")
    typer.echo(f"{len(applied)} automation(s) on {api}; `prefect automation ls` shows them")
