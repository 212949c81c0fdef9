"""What every ``hospital`` command shares: exit codes, one-line errors, and settings checked before anything runs.

A bad argument (or a bad ``HOSPITAL_*`` variable) is exit code 2 with one line on stderr, before any file, flow run
or server is created: commands call ``settings_or_exit`` first and check the rest of their arguments before doing
anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from pydantic import ValidationError

from flows.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Exit code of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

#: Settings fields that have a command-line option of the same meaning.
_OPTIONS = {"home": "--home", "patients": "--patients", "seed": "--seed", "defect_rate": "--defect-rate",
            "workers": "--workers", "timezone": "--timezone", "start_date": "--start", "end_date": "--end"}  # fmt: skip


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: <message>`` (one line) on stderr and exit with ``code``."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_error(error: ValidationError, given: dict[str, Any]) -> str:
    """One line naming the option or ``HOSPITAL_*`` variable at fault, the rule and the value given."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    name = _OPTIONS.get(field, field) if field in given else f"HOSPITAL_{field.upper()}"
    rule = first["msg"][0].lower() + first["msg"][1:] if first["msg"] else "invalid"
    rule = rule.removeprefix("value error, ")
    return f"{name}: {rule} (got {first.get('input')!r})"


def settings_or_exit(home: Path | None = None, **overrides: Any) -> Settings:
    """``Settings`` with the command's options applied (None = not given); exit 2 naming the bad one."""
    given = {key: value for key, value in {"home": home, **overrides}.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        fail(settings_error(exc, given))
