"""Data Docs that work offline, link each validation's own page, and stay bounded over a year of daily runs.

**Offline.** GX 1.24.1's page templates load jQuery, Bootstrap, bootstrap-table, Font Awesome, the datepicker and
vega from CDNs, and the logo from S3: on a hospital network without internet the index is empty and validation pages
have no icons. The site here is configured with GX's supported extension points (``site_section_builders`` and
``site_index_builder`` take a ``view`` class): :class:`OfflinePageView` and :class:`OfflineIndexPageView` put the
project's templates (``expectations/assets/views``) ahead of GX's, and those link every asset by a URL relative to
the page, under ``<data_docs>/static/vendor/``, copied there by :func:`install_assets` from Python packages
(XStatic-jQuery, -Bootstrap, -Font-Awesome, -Bootstrap-Datepicker) and from the vendored bootstrap-table
(``expectations/assets/vendor``). Pages load from ``file://`` and over http alike. GX's call-to-action and
newsletter footers are off. (GX's ``plugins_directory/custom_data_docs/views`` cannot do this: GX appends that folder
*after* its own templates, so a template of the same name never wins.)

**Bounded.** GX's ``DefaultSiteIndexBuilder`` lists every stored validation result and reads each one in full on
every build, and its section builders list every result to pick the run's own: the work of each run grows with the
history. Here :class:`SummarySectionBuilder` renders only the run's pages and records each in a small summary file
(``<data_docs>/index.json``: suite, run, time, state and counts), and :class:`SummaryIndexBuilder` renders the
index from that file alone. :func:`prune` removes results and validation pages older than the retention, except
the runs it is told to keep, and rewrites the summary and the index from what is left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from great_expectations import exceptions as gx_exceptions
from great_expectations.core import ExpectationSuite
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.store.html_site_store import SiteSectionIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder, DefaultSiteSectionBuilder
from great_expectations.render.renderer.site_index_page_renderer import SiteIndexPageRenderer
from great_expectations.render.util import resource_key_passes_run_name_filter
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader

from expectations.duckdb_support import check_versions

__all__ = [
    "SITE_NAME",
    "SUMMARY_FILE",
    "IndexEntry",
    "OfflineIndexPageView",
    "OfflinePageView",
    "PruneReport",
    "SummaryIndexBuilder",
    "SummarySectionBuilder",
    "install_assets",
    "prune",
    "read_summary",
    "site_config",
    "validation_page",
    "write_index",
]

logger = logging.getLogger(__name__)

SITE_NAME = "hospital_quality_gates"
#: The index's own data, beside index.html: one entry per validation page, and the suites with a page.
SUMMARY_FILE = "index.json"
SUMMARY_FORMAT = 1
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
VIEWS_DIR = ASSETS_DIR / "views"
#: The templates in VIEWS_DIR are GX 1.24.1's with their CDN links replaced: another GX may render other markup.
PINNED_VERSIONS = {"great-expectations": "1.24.1"}
_RUN_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # GX's run-time folder names (RunIdentifier.to_tuple)
_MODULE = __name__


def site_config(data_docs_dir: Path) -> dict[str, Any]:
    """The GX ``data_docs_sites`` entry of the project's site: offline views, run-only pages, summary index."""
    check_versions(
        PINNED_VERSIONS,
        fix="expectations/datadocs.py renders Data Docs with GX 1.24.1's templates, CDN links replaced",
        test="tests/integration/test_docs_offline.py",
    )
    summary = str(data_docs_dir / SUMMARY_FILE)
    page_view = {"module_name": _MODULE, "class_name": "OfflinePageView"}
    section = {
        "module_name": _MODULE,
        "class_name": "SummarySectionBuilder",
        "view": page_view,
        "summary_file": summary,
    }
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
        "show_how_to_buttons": False,  # no "how to" modal on validation pages, no call-to-action footer
        "site_section_builders": {
            "expectations": dict(section),
            "validations": dict(section),
            "profiling": "False",  # GX's spelling for "no such section"; these checkpoints never profile
        },
        "site_index_builder": {
            "module_name": _MODULE,
            "class_name": "SummaryIndexBuilder",
            "view": {"module_name": _MODULE, "class_name": "OfflineIndexPageView"},
            "summary_file": summary,
        },
    }


# --- Offline pages ---------------------------------------------------------------------------------------------


#: One Jinja environment per view class and view folders, for the whole process (see ``_OfflineTemplates``).
_ENVIRONMENTS: dict[tuple[type, str | None, str | None], Any] = {}


class _OfflineTemplates:
    """Puts ``expectations/assets/views`` ahead of GX's templates in the view's Jinja loader, compiled once.

    GX makes a new view, and so a new Jinja environment that compiles every template again, for each site build,
    and checks each template file's modification time on each of its ~4,000 template look-ups per build. Here the
    first view of a class keeps its environment for the process (the raw and marts gates of one run share the
    compiled templates), with ``auto_reload`` off: the templates are package files that do not change while it runs.
    The environment's filters are that first view's methods, which depend on nothing but the view folders, part of
    the key.
    """

    env: Any
    custom_styles_directory: str | None
    custom_views_directory: str | None

    def _prefer_project_templates(self) -> None:
        key = (type(self), self.custom_styles_directory, self.custom_views_directory)
        shared = _ENVIRONMENTS.get(key)
        if shared is None:
            self.env.loader = ChoiceLoader([FileSystemLoader(str(VIEWS_DIR)), self.env.loader])
            self.env.auto_reload = False
            shared = _ENVIRONMENTS[key] = self.env
        self.env = shared


class OfflinePageView(_OfflineTemplates, DefaultJinjaPageView):
    """GX's page view (validation and suite pages) rendering the project's offline templates."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self._prefer_project_templates()


class OfflineIndexPageView(_OfflineTemplates, DefaultJinjaIndexPageView):
    """GX's index page view rendering the project's offline templates."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self._prefer_project_templates()


def _asset_sources() -> list[tuple[Path, str]]:
    """(source file, path under ``static/vendor``) of every asset the offline templates link."""
    from xstatic.pkg import bootstrap, bootstrap_datepicker, font_awesome, jquery

    awesome, datepicker = Path(font_awesome.BASE_DIR), Path(bootstrap_datepicker.BASE_DIR)
    sources = [
        (Path(jquery.BASE_DIR) / "jquery.min.js", "jquery/jquery.min.js"),
        (Path(bootstrap.BASE_DIR) / "css" / "bootstrap.min.css", "bootstrap/css/bootstrap.min.css"),
        (Path(bootstrap.BASE_DIR) / "js" / "bootstrap.bundle.min.js", "bootstrap/js/bootstrap.bundle.min.js"),
        (awesome / "css" / "all.min.css", "font-awesome/css/all.min.css"),
        (awesome / "LICENSE.txt", "font-awesome/LICENSE.txt"),
        *[(font, f"font-awesome/webfonts/{font.name}") for font in sorted((awesome / "webfonts").iterdir())],
        *[
            (datepicker / name, f"bootstrap-datepicker/{name}")
            for name in ("bootstrap-datepicker.js", "bootstrap-datepicker3.standalone.css")
        ],
    ]
    table = ASSETS_DIR / "vendor" / "bootstrap-table"
    sources += [(path, f"bootstrap-table/{path.name}") for path in sorted(table.iterdir()) if path.suffix != ".md"]
    return sources


def install_assets(data_docs_dir: Path) -> list[Path]:
    """Copy the offline assets into ``<data_docs_dir>/static/vendor``; returns the files written (unchanged skipped).

    Copied once per data home, not per run: a file whose size and modification time match its source is left alone.
    """
    written = []
    vendor = data_docs_dir / "static" / "vendor"
    for source, relative in _asset_sources():
        if not source.is_file():
            raise FileNotFoundError(
                f"{source}: a Data Docs asset is missing from its package; reinstall the pinned packages "
                "(make install) so the pages can load offline"
            )
        target = vendor / relative
        stat = source.stat()
        if target.is_file() and (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        written.append(target)
    return written


# --- The summary the index is built from ------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One validation page of the site: names, time, state and counts only (never a data value)."""

    suite: str
    run_name: str
    run_time: str  # ISO 8601, UTC
    batch_identifier: str
    success: bool
    evaluated: int
    failed: int
    asset_name: str | None = None
    batch_spec: dict | None = None  # GX shows it in the index's batch tooltip (the asset's query)

    @property
    def identifier(self) -> ValidationResultIdentifier:
        """GX's key of the result and of its page."""
        return ValidationResultIdentifier(
            ExpectationSuiteIdentifier(name=self.suite),
            RunIdentifier(run_name=self.run_name, run_time=dt.datetime.fromisoformat(self.run_time)),
            self.batch_identifier,
        )

    @property
    def page(self) -> str:
        """The page's path relative to the site's root (POSIX)."""
        return "/".join(("validations", *self.identifier.to_tuple())) + ".html"


@dataclass
class Summary:
    """The suites with a page, and the validation pages, of one site."""

    suites: set[str]
    validations: dict[str, IndexEntry]  # by page path
    #: Suite name -> fingerprint of what its page was rendered from (:func:`suite_fingerprint`).
    suite_pages: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        entries = sorted(self.validations.values(), key=lambda e: (e.run_time, e.suite), reverse=True)
        return json.dumps(
            {"format": SUMMARY_FORMAT, "suites": sorted(self.suites), "validations": [asdict(e) for e in entries],
             "suite_pages": dict(sorted(self.suite_pages.items()))},
            indent=1,
        )  # fmt: skip


def read_summary(data_docs_dir: Path) -> Summary | None:
    """The site's summary, or None when it has none (or an unreadable one, which is then rebuilt)."""
    path = data_docs_dir / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != SUMMARY_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        entries = [IndexEntry(**item) for item in data["validations"]]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("%s is unreadable (%s); rebuilding it from the stored results", path, type(exc).__name__)
        return None
    return Summary(set(data["suites"]), {entry.page: entry for entry in entries}, dict(data.get("suite_pages") or {}))


def _write_summary(data_docs_dir: Path, summary: Summary) -> None:
    path = data_docs_dir / SUMMARY_FILE
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(summary.to_json(), encoding="utf-8")
    temporary.replace(path)  # atomic: a reader sees the old summary or the new one


def _entry(key: ValidationResultIdentifier, result: Any) -> IndexEntry:
    """The summary entry of one validation result (an ``ExpectationSuiteValidationResult``)."""
    statistics = result.statistics or {}
    meta = result.meta or {}
    batch_spec = meta.get("batch_spec")
    asset = result.asset_name or (batch_spec or {}).get("data_asset_name")
    return IndexEntry(
        suite=key.expectation_suite_identifier.name,
        run_name=key.run_id.run_name,
        run_time=key.run_id.run_time.astimezone(dt.UTC).isoformat(),
        batch_identifier=key.batch_identifier,
        success=bool(result.success),
        evaluated=int(statistics.get("evaluated_expectations") or 0),
        failed=int(statistics.get("unsuccessful_expectations") or 0),
        asset_name=asset,
        batch_spec=json.loads(json.dumps(dict(batch_spec), default=str)) if batch_spec else None,
    )


def _bootstrap_summary(data_docs_dir: Path, results_store: Any) -> Summary:
    """A summary for a site built before summaries existed: reads every stored result whose page exists, once."""
    suites_dir = data_docs_dir / "expectations"
    suites = {
        ".".join(page.relative_to(suites_dir).with_suffix("").parts) for page in suites_dir.rglob("*.html")
    } if suites_dir.is_dir() else set()  # fmt: skip
    validations = {}
    if results_store is not None:
        keys = results_store.list_keys()
        for key in keys:
            if not validation_page(data_docs_dir, key).is_file():
                continue
            try:
                entry = _entry(key, results_store.get(key))
            except Exception as exc:  # one unreadable result must not stop the gate; its page stays unlisted
                logger.warning("Data Docs: stored result %s unreadable (%s); not indexed", key, type(exc).__name__)
                continue
            validations[entry.page] = entry
        logger.info("Data Docs summary rebuilt from %d stored results (%d with a page)", len(keys), len(validations))
    return Summary(suites, validations)


def _load_summary(data_docs_dir: Path, results_store: Any) -> Summary:
    summary = read_summary(data_docs_dir)
    if summary is None:
        summary = _bootstrap_summary(data_docs_dir, results_store)
        _write_summary(data_docs_dir, summary)
    return summary


def suite_page(data_docs_dir: Path, suite_name: str) -> Path:
    """Where the site writes the page of one expectation suite."""
    return data_docs_dir.joinpath("expectations", *suite_name.split(".")).with_suffix(".html")


def _strip_ids(value: Any) -> Any:
    # Suites and expectations get new random ids in each run's ephemeral context; their pages do not show them.
    if isinstance(value, dict):
        return {key: _strip_ids(item) for key, item in value.items() if key != "id"}
    if isinstance(value, list):
        return [_strip_ids(item) for item in value]
    return value


_RENDERING: list[str] = []  # the code a page is rendered with, fingerprinted once per process


def _rendering_fingerprint() -> str:
    if not _RENDERING:
        digest = hashlib.sha256(f"great-expectations {PINNED_VERSIONS['great-expectations']}".encode())
        for template in sorted(VIEWS_DIR.iterdir()):
            digest.update(template.name.encode() + template.read_bytes())
        _RENDERING.append(digest.hexdigest())
    return _RENDERING[0]


def suite_fingerprint(suite: ExpectationSuite) -> str:
    """What a suite's page is rendered from: the suite (ids left out), the GX version and the page templates."""
    document = json.dumps(_strip_ids(suite.to_json_dict()), sort_keys=True, default=str)
    return hashlib.sha256((_rendering_fingerprint() + document).encode()).hexdigest()


def validation_page(data_docs_dir: Path, identifier: ValidationResultIdentifier) -> Path:
    """Where the site writes the page of one validation result."""
    *folders, batch = identifier.to_tuple()
    return data_docs_dir.joinpath("validations", *folders, f"{batch}.html")


# --- Builders ----------------------------------------------------------------------------------------------------


def _site_dir(target_store: Any) -> Path:
    return Path(target_store.store_backends["index_page"].full_base_directory)


class SummarySectionBuilder(DefaultSiteSectionBuilder):
    """GX's section builder rendering only the resources it is given, and recording their pages in the summary.

    GX's own lists every key of its source store (every stored result) to find the run's few, on every build.
    Called without resources (a full rebuild), it renders every stored one, as GX's does.
    """

    # GX passes its runtime arguments (context, stores, view folders) only to parameters it sees by name.
    def __init__(  # GX's signature, plus the summary file
        self,
        name: str,
        data_context: Any,
        target_store: Any,
        source_store_name: str,
        summary_file: str,
        custom_styles_directory: str | None = None,
        custom_views_directory: str | None = None,
        show_how_to_buttons: bool = True,
        run_name_filter: dict | None = None,
        validation_results_limit: int | None = None,
        renderer: dict | None = None,
        view: dict | None = None,
        data_context_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name, data_context, target_store, source_store_name, custom_styles_directory=custom_styles_directory,
            custom_views_directory=custom_views_directory, show_how_to_buttons=show_how_to_buttons,
            run_name_filter=run_name_filter, validation_results_limit=validation_results_limit, renderer=renderer,
            view=view, data_context_id=data_context_id, **kwargs,
        )  # fmt: skip
        self.summary_file = Path(summary_file)

    def build(self, resource_identifiers: list | None = None) -> None:
        """Render the pages of ``resource_identifiers`` of this section, and add them to the summary."""
        section_type = ExpectationSuiteIdentifier if self.name == "expectations" else ValidationResultIdentifier
        keys = self.source_store.list_keys() if resource_identifiers is None else resource_identifiers
        data_docs_dir = self.summary_file.parent
        summary = _load_summary(data_docs_dir, self.data_context.validation_results_store)
        suites, validations, fingerprints = set(), [], {}
        for key in keys:
            if not isinstance(key, section_type):
                continue
            if (
                isinstance(key, ValidationResultIdentifier)
                and self.run_name_filter
                and not resource_key_passes_run_name_filter(key, self.run_name_filter)
            ):
                continue
            try:
                resource = self.source_store.get(key)
            except gx_exceptions.InvalidKeyError:
                logger.warning("Data Docs: no stored %s for %s; no page", self.name, key.to_tuple())
                continue
            if isinstance(key, ExpectationSuiteIdentifier):
                resource = ExpectationSuite(**resource)
                fingerprint = suite_fingerprint(resource)
                # A suite page is rendered from its suite alone: unchanged suite, unchanged page (the marts
                # checkpoint's 25 suites are the same every day as long as the marts' columns are).
                unchanged = summary.suite_pages.get(key.name) == fingerprint
                if unchanged and suite_page(data_docs_dir, key.name).is_file():
                    suites.add(key.name)
                    continue
            if not self._render(key, resource):
                continue
            if isinstance(key, ExpectationSuiteIdentifier):
                suites.add(key.name)
                fingerprints[key.name] = fingerprint
            else:
                validations.append(_entry(key, resource))
        summary.suites |= suites
        summary.suite_pages.update(fingerprints)
        summary.validations.update({entry.page: entry for entry in validations})
        _write_summary(data_docs_dir, summary)

    def _render(self, key: Any, resource: Any) -> bool:
        """Render and store one page; a rendering error is logged (as GX does) and leaves that page out."""
        try:
            rendered = self.renderer_class.render(resource)
            html = self.view_class.render(
                rendered, data_context_id=self.data_context_id, show_how_to_buttons=self.show_how_to_buttons
            )
            self.target_store.set(SiteSectionIdentifier(site_section_name=self.name, resource_identifier=key), html)
        except Exception as exc:  # GX's builder logs and goes on: one broken page must not hide the others
            logger.error("Data Docs: the %s page of %s could not be rendered (%s)", self.name, key, type(exc).__name__)
            return False
        return True


class SummaryIndexBuilder(DefaultSiteIndexBuilder):
    """GX's index builder, rendering the index from the summary file instead of reading every stored result."""

    def __init__(  # GX's signature, plus the summary file
        self,
        name: str,
        site_name: str,
        data_context: Any,
        target_store: Any,
        site_section_builders_config: dict,
        summary_file: str,
        custom_styles_directory: str | None = None,
        custom_views_directory: str | None = None,
        show_how_to_buttons: bool = True,
        validation_results_limit: int | None = None,
        renderer: dict | None = None,
        view: dict | None = None,
        data_context_id: str | None = None,
        source_stores: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name, site_name, data_context, target_store, site_section_builders_config,
            custom_styles_directory=custom_styles_directory, custom_views_directory=custom_views_directory,
            show_how_to_buttons=show_how_to_buttons, validation_results_limit=validation_results_limit,
            renderer=renderer, view=view, data_context_id=data_context_id, source_stores=source_stores, **kwargs,
        )  # fmt: skip
        self.summary_file = Path(summary_file)

    def build(self, skip_and_clean_missing: bool = True, build_index: bool = True) -> tuple[Any, OrderedDict | None]:
        """Write index.html from the summary (and the offline assets); returns its URL and the index's links."""
        if not build_index:
            return None, None
        data_docs_dir = self.summary_file.parent
        summary = _load_summary(data_docs_dir, self.data_context.validation_results_store)
        install_assets(_site_dir(self.target_store))
        links = _index_links(summary, self.site_name)
        html = self.view_class.render(
            SiteIndexPageRenderer.render(OrderedDict(links)),
            data_context_id=self.data_context_id,
            show_how_to_buttons=self.show_how_to_buttons,
        )
        return self.target_store.write_index_page(html), links


def _index_links(summary: Summary, site_name: str) -> OrderedDict:
    """GX's ``index_links_dict`` for the summary's suites and validations (newest first)."""
    links: OrderedDict = OrderedDict(site_name=site_name)
    # GX's own link-building method (its links, URL-quoting and suite paths); it uses nothing of its instance.
    builder = DefaultSiteIndexBuilder.add_resource_info_to_index_links_dict
    for suite in sorted(summary.suites):
        builder(None, links, expectation_suite_name=suite, section_name="expectations")
    for entry in sorted(summary.validations.values(), key=lambda e: (e.run_time, e.suite), reverse=True):
        identifier = entry.identifier
        builder(
            None, links, expectation_suite_name=entry.suite, section_name="validations",
            batch_identifier=entry.batch_identifier, run_id=identifier.run_id, validation_success=entry.success,
            run_time=identifier.run_id.run_time, run_name=entry.run_name, asset_name=entry.asset_name,
            batch_spec=entry.batch_spec or {},
        )  # fmt: skip
    return links


def write_index(data_docs_dir: Path, site_name: str = SITE_NAME) -> Path:
    """Render ``index.html`` from the site's summary (no GX context, no stored result read); returns its path."""
    summary = read_summary(data_docs_dir) or Summary(set(), {})
    install_assets(data_docs_dir)
    html = OfflineIndexPageView().render(
        SiteIndexPageRenderer.render(_index_links(summary, site_name)), data_context_id=None, show_how_to_buttons=False
    )
    index = data_docs_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


# --- Retention ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` removed and what the index lists afterwards."""

    removed_results: int
    removed_pages: int
    freed_bytes: int
    kept_pages: int


def prune(
    data_docs_dir: Path,
    results_dir: Path,
    *,
    keep_days: int,
    now: dt.datetime,
    keep_runs: Iterable[tuple[str, str | None]] = (),
) -> PruneReport:
    """Remove validation results and pages of runs older than ``keep_days`` before ``now``, then rewrite the index.

    ``keep_runs`` are runs never removed, whatever their age, as ``(run name, run time)`` pairs: the run time as
    an ISO 8601 string (``CheckpointOutcome.run_time``), or None for every run of that name. Pass the runs the
    published ``latest`` report was validated by (``outcome.run_key`` of its checkpoints). Suite pages are
    overwritten by every run, so they do not accumulate and are left alone. Returns counts and bytes freed.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
    if keep_days < 0:
        raise ValueError(f"keep_days must be 0 or more, got {keep_days}")
    cutoff = now - dt.timedelta(days=keep_days)
    names = {name for name, time in keep_runs if time is None}
    exact = {(name, _parse_time(time)) for name, time in keep_runs if time is not None}

    def expired(run_name: str, run_time: dt.datetime | None) -> bool:
        if run_time is None or run_time >= cutoff or run_name in names:
            return False
        return (run_name, run_time) not in exact

    removed_results, freed_results = _remove_expired(results_dir, ".json", expired)
    removed_pages, freed_pages = _remove_expired(data_docs_dir / "validations", ".html", expired)
    summary = read_summary(data_docs_dir)
    if summary is not None:
        summary.validations = {
            page: entry
            for page, entry in summary.validations.items()
            if not expired(entry.run_name, _parse_time(entry.run_time))
        }
        _write_summary(data_docs_dir, summary)
    if summary is not None or (data_docs_dir / "index.html").exists():
        write_index(data_docs_dir)
    kept = len(summary.validations) if summary is not None else 0
    logger.info(
        "Data Docs retention (%d days): removed %d results and %d pages (%.1f MB); the index lists %d pages",
        keep_days, removed_results, removed_pages, (freed_results + freed_pages) / 1e6, kept,
    )  # fmt: skip
    return PruneReport(removed_results, removed_pages, freed_results + freed_pages, kept)


def _parse_time(text: str) -> dt.datetime:
    """An aware UTC datetime from an ISO 8601 string or GX's run-time folder name (``20260107T021500.000000Z``)."""
    try:
        parsed = dt.datetime.strptime(text, _RUN_TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        parsed = dt.datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            raise ValueError(f"run time {text!r} has no time zone") from None
    return parsed.astimezone(dt.UTC)


def _stored_runs(base: Path, suffix: str) -> Iterator[tuple[Path, str, dt.datetime | None]]:
    """Every ``<suite parts>/<run name>/<run time>/<batch><suffix>`` file under ``base``, with run name and time."""
    if not base.is_dir():
        return
    for folder, _, files in os.walk(base):
        for name in files:
            if not name.endswith(suffix):
                continue
            path = Path(folder) / name
            parts = path.relative_to(base).parts
            if len(parts) < 4:  # not a result or page (e.g. GX's .ge_store_backend_id)
                continue
            try:
                run_time = _parse_time(parts[-2])
            except ValueError:
                run_time = None  # not GX's layout: never removed
            yield path, parts[-3], run_time


def _remove_expired(base: Path, suffix: str, expired: Any) -> tuple[int, int]:
    removed = freed = 0
    folders = set()
    for path, run_name, run_time in list(_stored_runs(base, suffix)):
        if expired(run_name, run_time):
            freed += path.stat().st_size
            path.unlink()
            removed += 1
            folders.add(path.parent)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        while folder != base and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed, freed
