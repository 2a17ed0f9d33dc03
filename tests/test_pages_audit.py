"""The Audit page through AppTest: newest first, paged, filtered, refusals at a glance, details as data, a CSV.

An admin signs in as in tests/test_signin.py (`at.secrets` and `at.user`); the page gate refuses the
other roles, and the service refuses them again underneath.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.domain.access import Actor, Role
from workbench.errors import Forbidden
from workbench.services import access, audit, users
from workbench.store import Store
from workbench.store import audit as audit_rows
from workbench.ui import audit_page

ROOT = Path(__file__).resolve().parents[1]
AUDIT = str(ROOT / "pages" / "10_Audit.py")
ADMIN, ENGINEER, PM = "admin@acme.com", "eng@acme.com", "pm@acme.com"
HOSTILE = "<img src=x onerror=alert(1)> **bold** [link](http://x)"
OLD_JOBS = 120


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_streamlit_caches: None) -> Iterator[Store]:
    """Roles for three people, 120 job launches in 2026-01 (one of them hostile), and one refusal now."""
    store = Store(tmp_path / "audit.db")
    monkeypatch.setenv("WORKBENCH_DB", str(store.path))
    for email, role in ((ADMIN, "admin"), (ENGINEER, "engineer"), (PM, "pm")):
        users.assign(store, email, role)
    with store.write() as db:
        for n in range(OLD_JOBS):
            audit_rows.insert(db, ts=f"2026-01-{1 + n % 28:02d}T10:00:{n % 60:02d}+00:00", actor=ENGINEER,
                              role="engineer", via="oidc", action="job.launch", target=f"job:{n}", outcome="ok",
                              detail={"name": HOSTILE if n == 7 else f"run-{n}"})
    with access.acting_as(Actor(email=PM, role=Role.PM, via="oidc")), pytest.raises(Forbidden):
        users.assign(store, "=cmd|calc@acme.com", "admin")
    yield store
    access.set_process_default(access.operator())
    access.set_resolver(None)


def page(email: str) -> AppTest:
    at = AppTest.from_file(AUDIT, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32}
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    return ran(at)


def ran(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest) -> list[dict[str, object]]:
    data = at.dataframe[0].value
    return (data.data if hasattr(data, "data") else data).to_dict("records")


def test_the_admin_sees_the_trail_newest_first_with_refusals_marked(trail: Store) -> None:
    at = page(ADMIN)
    assert [t.value for t in at.title] == [":material/policy: Audit"]
    assert metrics(at) == {"Events": f"{OLD_JOBS + 4:,}", "Refused": "1"}
    assert "1 refused attempt under these filters" in at.warning[0].value
    rows = table(at)
    assert len(rows) == audit_page.PAGE_SIZE
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    first = rows[0]
    assert (first["actor"], first["action"], first["outcome"]) == (PM, "role.assign", "⛔ refused")
    assert "Events 1-50 of 124 (page 1 of 3)" in " ".join(c.value for c in at.caption)


def test_pages_go_back_in_time(trail: Store) -> None:
    at = page(ADMIN)
    at.number_input(key=audit_page.PAGE).set_value(3)
    ran(at)
    rows = table(at)
    assert len(rows) == OLD_JOBS + 4 - 2 * audit_page.PAGE_SIZE
    assert (rows[-1]["id"], rows[-1]["target"]) == (1, f"user:{ADMIN}")  # the first event ever, last


@pytest.mark.parametrize(("widget", "value", "events", "actions"), [
    ("outcome", "refused", 1, {"role.assign"}),
    ("action", "role", 4, {"role.assign"}),
    ("action", "job.launch", OLD_JOBS, {"job.launch"}),
    ("actor", PM, 1, {"role.assign"}),
])
def test_filters_narrow_the_events_and_the_counts(trail: Store, widget: str, value: str, events: int,
                                                  actions: set[str]) -> None:
    at = page(ADMIN)
    at.selectbox(key=audit_page.P + widget).set_value(value)
    ran(at)
    assert metrics(at)["Events"] == f"{events:,}"
    assert {r["action"] for r in table(at)} == actions


def test_a_target_and_a_date_range_narrow_it_to_one_event(trail: Store) -> None:
    at = page(ADMIN)
    at.date_input(key=audit_page.DATES).set_value((date(2026, 1, 8), date(2026, 1, 8)))
    ran(at)
    assert metrics(at)["Events"] == f"{len([n for n in range(OLD_JOBS) if n % 28 == 7]):,}"
    at.text_input(key=audit_page.TARGET).set_value("job:7")
    ran(at)
    assert [r["target"] for r in table(at)] == ["job:7"]


def test_details_are_shown_as_data_never_as_markup(trail: Store) -> None:
    at = page(ADMIN)
    at.text_input(key=audit_page.TARGET).set_value("job:7")
    ran(at)
    assert HOSTILE.replace('"', '\\"') in table(at)[0]["detail"]  # a table cell: text, not markdown
    assert any(HOSTILE in c.value for c in at.code)
    for element in (*at.markdown, *at.caption):
        assert "<img" not in element.value and "[link](" not in element.value


def test_the_csv_holds_every_filtered_event_and_no_formulas(trail: Store) -> None:
    rows = list(csv.DictReader(io.StringIO(audit_page.csv_of(trail, audit_page.AuditFilter(action="role")))))
    assert len(rows) == 4 and rows[0]["outcome"] == "refused" and rows[0]["actor"] == PM
    with trail.write() as db:
        audit_rows.insert(db, ts="2026-02-01T00:00:00+00:00", actor="@evil", role=None, via="token",
                          action="dataset.rename", target='=HYPERLINK("http://x")', outcome="ok", detail={})
    every = list(csv.DictReader(io.StringIO(audit_page.csv_of(trail, audit_page.AuditFilter()))))
    assert len(every) == OLD_JOBS + 5
    assert not any(re.match(r"[=+\-@]", value) for row in every for value in row.values())
    assert {"'=HYPERLINK(\"http://x\")", "'@evil"} <= {value for row in every for value in row.values()}


def test_the_csv_reads_past_one_batch(trail: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_page, "CSV_BATCH", 7)
    rows = list(csv.DictReader(io.StringIO(audit_page.csv_of(trail, audit_page.AuditFilter(action="job")))))
    assert [r["target"] for r in rows] == [f"job:{n}" for n in reversed(range(OLD_JOBS))]


def test_the_download_button_is_there(trail: Store) -> None:
    at = page(ADMIN)
    assert [b.proto.label for b in at.get("download_button")] == [f"Download the {OLD_JOBS + 4} filtered events as CSV"]


@pytest.mark.parametrize("email", [ENGINEER, PM])
def test_other_roles_are_refused_the_page_and_the_trail(trail: Store, email: str) -> None:
    at = page(email)
    assert not at.dataframe
    assert "may not open Audit" in " ".join(e.value for e in at.error)
    with access.acting_as(users.actor_for(trail, email)), pytest.raises(Forbidden, match="audit.read"):
        audit.events(trail)
