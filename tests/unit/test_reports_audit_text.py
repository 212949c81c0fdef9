"""The audit's text rules (reports/publish.py, ``audit_text``): an e-mail address, an SSN or a phone number shape
anywhere in a published text file is found, however the text around it runs (the e-mail pattern starts an address
where a run of its characters starts, so a page of base64 images is searched in linear time)."""

from __future__ import annotations

import pytest

from reports.publish import audit_text

pytestmark = pytest.mark.unit

BASE64_RUN = "iVBORw0KGgoAAAANSUhEUgAA" * 2_000  # a run of word characters, as a PNG data URI has


@pytest.mark.parametrize(
    "text",
    [
        "contact someone@example.org today",
        "someone@example.org",
        "first.last+tag@hospital-network.org,",
        "<td>a@b.io</td>",
        f"{BASE64_RUN}x@example.org",  # glued to the end of a long run: the whole run is the local part
        f"{BASE64_RUN}/x@example.org",  # after a '/' of base64
        f"{BASE64_RUN} {BASE64_RUN}.x-y@sub-domain.example.com",
    ],
)
def test_an_email_address_is_found_wherever_it_stands(text: str) -> None:
    assert audit_text("page.html", text) == ["page.html: contains what looks like an e-mail address"]


@pytest.mark.parametrize(
    "text",
    [BASE64_RUN, f"{BASE64_RUN}@{BASE64_RUN}", "@media (max-width: 600px) { a { color: red } }", "user@localhost"],
)
def test_text_without_an_address_passes(text: str) -> None:
    assert audit_text("page.html", text) == []


def test_ssn_and_phone_shapes_are_found() -> None:
    found = audit_text("notes.csv", "x,912-34-5678\ny,(555) 123-4567\n")
    assert found == ["notes.csv: contains what looks like an SSN", "notes.csv: contains what looks like a phone number"]
