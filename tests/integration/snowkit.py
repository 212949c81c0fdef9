"""fakesnow's server for tests that need the real connector, dbt-snowflake and GX to reach an emulator over http.

``fakesnow.server()`` cannot be called twice in one process: it imports its ``fakesnow.server`` module inside
the function, which replaces the package's ``server`` function by that module, so the second call (another test
module in the same pytest worker) fails with "'module' object is not callable". And every server of a process
shares one in-memory database (``fakesnow.server.shared_fs``), so a second module would find the first one's
tables. This starts the same app the same way, on a new empty emulator, however often it is called.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from importlib import import_module


@contextlib.contextmanager
def emulator_server() -> Iterator[dict]:
    """The emulator's app under uvicorn on a free loopback port; yields connector keyword arguments."""
    import uvicorn

    module = import_module("fakesnow.server")
    module.shared_fs = import_module("fakesnow.instance").FakeSnow()  # a new, empty emulator for this server
    app = module.app
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, name="fakesnow server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    if not server.started:
        raise RuntimeError("the fakesnow server did not start")
    try:
        yield {"user": "fake", "password": "snow", "account": "fakesnow", "host": "127.0.0.1", "port": port,
               "protocol": "http", "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
               "network_timeout": 1}  # fmt: skip
    finally:
        server.should_exit = True
        thread.join()
