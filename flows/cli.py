"""The ``hospital`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hospital",
    help="Hospital data platform: generate, load, validate, transform and publish de-identified KPIs.",
    no_args_is_help=True,
    add_completion=False,
)
