"""The Prefect API a command runs against: ``PREFECT_API_URL`` when set, else a temporary local server it owns.

Prefect starts its own temporary server when no API URL is set, as a child process that outlives the command when
the command is killed: after ``kill -9`` of ``hospital run`` it kept running, and after a plain SIGTERM for minutes.
This module starts the same server (Prefect's API app under uvicorn on a free loopback port, UI off, the data in
PREFECT_HOME) in its own session, so a Ctrl-C in the terminal reaches the command and not the server, with the
Linux parent-death signal set, so the kernel stops the server when the command dies however it dies. The command
stops it itself on a normal exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

#: How long a temporary server may take to answer (it is slow to start on a busy machine).
STARTUP_TIMEOUT_SECONDS = 180.0
_PR_SET_PDEATHSIG = 1


class ServerStartError(RuntimeError):
    """The temporary Prefect server did not start; the message says why and what to do."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the child: ask the kernel for SIGTERM when the parent (the command) dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310 - loopback http
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def server_command(port: int) -> list[str]:
    """Prefect's API app under uvicorn on 127.0.0.1:``port`` (what Prefect's own temporary server runs)."""
    import prefect

    return [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "error", "--lifespan", "on"]  # fmt: skip


@contextlib.contextmanager
def temporary_server(log_file: Path | None = None, while_starting: Callable[[], object] | None = None) -> Iterator[str]:
    """Start a temporary Prefect server for the block and point this process's Prefect client at it.

    ``while_starting`` is called once the server process is started, before waiting for it to answer (the server
    takes 15-20 s to start, on one core): work the command needs anyway, done in that wait (its errors are
    ignored: whatever needs that work later reports them)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    output = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        server_command(port), env=env, stdout=output, stderr=output, stdin=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=_die_with_parent,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        if while_starting is not None:
            with contextlib.suppress(Exception):
                while_starting()
        while not _healthy(api_url):
            if process.poll() is not None:
                raise ServerStartError(
                    f"the temporary Prefect server exited with code {process.returncode} while starting. Check that "
                    f"PREFECT_HOME ({os.environ.get('PREFECT_HOME', '~/.prefect')}) exists and is writable, or set "
                    "PREFECT_API_URL to a running server"
                )
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"the temporary Prefect server did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s; the machine "
                    "may be overloaded. Start one with `prefect server start` and set PREFECT_API_URL"
                )
            time.sleep(0.2)
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = api_url  # for anything started from here that reads the environment
        try:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                try:
                    yield api_url
                finally:
                    _drain_to_api()
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
    finally:
        stop(process)
        if log_file is not None:
            output.close()  # type: ignore[union-attr]


def _drain_to_api() -> None:
    """Send the log lines and events still queued to the server before it stops (else they fail at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=10)


def stop(process: subprocess.Popen) -> None:
    """Stop the server: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def prefect_api(while_starting: Callable[[], object] | None = None) -> Iterator[str | None]:
    """The API of ``PREFECT_API_URL`` when set (yields it), else a temporary server for the block
    (``while_starting``: see :func:`temporary_server`; not called when the API is already there)."""
    from prefect.settings import PREFECT_API_URL

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    with temporary_server(while_starting=while_starting) as api_url:
        yield api_url
