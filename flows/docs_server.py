"""``hospital docs --serve``: the data home's published report, Data Docs and dbt docs over http, on loopback.

Links in Prefect artifacts and notifications must open from the Prefect UI, an http page: browsers refuse ``file://``
links from there, and they mean nothing on Prefect Cloud. So runs link to ``HOSPITAL_DOCS_URL`` (default
``http://127.0.0.1:8765``), and this server is what answers there on a self-hosted machine.

Only three folders of the data home are served, read-only: ``reports/``, ``data_docs/`` and ``dbt_docs/``. The
warehouse, landing batches, GX's stored results and dbt's logs are PHI or operational files and are never served;
a path that resolves outside the three folders (``..``, a symbolic link pointing elsewhere) is refused with 404.
"""

from __future__ import annotations

import functools
import http.server
import posixpath
import urllib.parse
from pathlib import Path

from flows.settings import DataHome

#: URL prefix -> folder of the data home.
SERVED = {"reports": "reports", "data_docs": "data_docs", "dbt_docs": "dbt_docs"}


def served_path(home: DataHome, url_path: str) -> Path | None:
    """The file a URL path names, or None when it is outside the served folders (or does not exist)."""
    path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(url_path).path))
    parts = [part for part in path.split("/") if part and part != "."]
    if not parts or parts[0] not in SERVED or ".." in parts:
        return None
    root = (home.root / SERVED[parts[0]]).resolve()
    candidate = (home.root / SERVED[parts[0]]).joinpath(*parts[1:]).resolve()
    if candidate != root and root not in candidate.parents:
        return None  # a link that leaves its folder
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from the data home's three published folders only; an index page links them."""

    def __init__(self, *args, home: DataHome, **kwargs) -> None:
        self.home = home
        super().__init__(*args, directory=str(home.root), **kwargs)

    def do_GET(self) -> None:
        """Serve the file, the landing page (``/``), or 404."""
        if urllib.parse.urlsplit(self.path).path in ("", "/"):
            self._index()
            return
        if served_path(self.home, self.path) is None:
            self.send_error(404, "Not a published file")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        """As GET, without the body."""
        if served_path(self.home, self.path) is None and urllib.parse.urlsplit(self.path).path not in ("", "/"):
            self.send_error(404, "Not a published file")
            return
        super().do_HEAD()

    def translate_path(self, path: str) -> str:
        """Map to the file ``served_path`` allows (never a file outside the three folders)."""
        served = served_path(self.home, path)
        return str(served) if served is not None else str(self.home.root / "__not_served__")

    def list_directory(self, path):
        """No folder listings (the run folders' names hold run ids, nothing else, but listings help no reader)."""
        self.send_error(404, "Not a published file")

    def _index(self) -> None:
        links = [("Latest report", "/reports/latest/report.html"), ("Data Docs", "/data_docs/index.html"),
                 ("dbt docs", "/dbt_docs/static_index.html")]  # fmt: skip
        items = "".join(f'<li><a href="{href}">{title}</a></li>' for title, href in links)
        body = (f"<!doctype html><html><head><meta charset='utf-8'><title>Hospital data platform</title></head>"
                f"<body><h1>Hospital data platform</h1><ul>{items}</ul></body></html>").encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Quiet: request lines would only repeat file names."""


def make_server(home: DataHome, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """An http server for the data home's published folders (call ``serve_forever()``)."""
    handler = functools.partial(_Handler, home=home)
    return http.server.ThreadingHTTPServer((host, port), handler)


def docs_link(docs_url: str, home: DataHome, path: Path | str | None) -> str | None:
    """The http URL of a file in one of the served folders (None when it is not in one: never a file:// link)."""
    if path is None:
        return None
    text = str(path)
    if "://" in text:
        return text
    try:
        relative = Path(text).absolute().relative_to(home.root.absolute())
    except ValueError:
        return None
    if not relative.parts or relative.parts[0] not in SERVED:
        return None
    return f"{docs_url.rstrip('/')}/{urllib.parse.quote(relative.as_posix())}"
