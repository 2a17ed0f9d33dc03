"""Roles, the acting person, refusals and the audit trail: the core every area's checks stand on."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from workbench.domain.access import (
    NOBODY,
    PAGES,
    ROLE_PERMISSIONS,
    Actor,
    Permission,
    Role,
    may_open,
    parse_role,
)
from workbench.errors import Conflict, Forbidden, InvalidInput, NotFound
from workbench.services import access, audit, users
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]


def person(email: str, role: Role | None) -> Actor:
    return Actor(email=email, name=email, role=role, via="oidc")


# --- roles (pure) ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "permission", "allowed"), [
    (Role.ADMIN, Permission.USERS_MANAGE, True),
    (Role.ADMIN, Permission.DATASETS_WRITE, True),
    (Role.ENGINEER, Permission.JOBS_WRITE, True),
    (Role.ENGINEER, Permission.USERS_MANAGE, False),
    (Role.ENGINEER, Permission.AUDIT_READ, False),
    (Role.REVIEWER, Permission.REVIEW_WORK, True),
    (Role.REVIEWER, Permission.LABELS_WRITE, True),
    (Role.REVIEWER, Permission.DATASETS_READ, True),
    (Role.REVIEWER, Permission.DATASETS_WRITE, False),
    (Role.REVIEWER, Permission.COSTS_READ, False),
    (Role.REVIEWER, Permission.JOBS_READ, False),
    (Role.PM, Permission.COSTS_WRITE, True),
    (Role.PM, Permission.EXPERIMENTS_WRITE, True),
    (Role.PM, Permission.DATASETS_READ, True),
    (Role.PM, Permission.DATASETS_WRITE, False),
    (Role.PM, Permission.LABELS_WRITE, False),
    (Role.PM, Permission.JOBS_WRITE, False),
    (Role.PM, Permission.AUDIT_READ, False),
])
def test_each_role_allows_what_the_issue_gives_it(role: Role, permission: Permission, allowed: bool) -> None:
    assert person("x@acme.com", role).can(permission) is allowed


def test_no_role_may_do_nothing_and_every_role_is_described() -> None:
    assert not any(person("x@acme.com", None).can(p) for p in Permission)
    assert not any(NOBODY.can(p) for p in Permission)
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert access.local_user().can(Permission.USERS_MANAGE)
    assert access.local_user().email == access.operator().email


@pytest.mark.parametrize(("role", "page", "allowed"), [
    (Role.REVIEWER, "pages/4_Review.py", True),
    (Role.REVIEWER, "pages/7_Costs.py", False),
    (Role.REVIEWER, "Home.py", True),
    (Role.PM, "pages/7_Costs.py", True),
    (Role.PM, "pages/1_Datasets.py", True),
    (Role.PM, "pages/10_Audit.py", False),
    (Role.ENGINEER, "pages/10_Audit.py", False),
    (Role.ADMIN, "pages/10_Audit.py", True),
    (None, "Home.py", False),
])
def test_pages_open_by_role(role: Role | None, page: str, allowed: bool) -> None:
    assert may_open(person("x@acme.com", role), page) is allowed


def test_every_page_script_is_in_the_page_table() -> None:
    scripts = {"Home.py", *(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))}
    assert scripts <= set(PAGES), scripts - set(PAGES)


def test_parse_role_reads_what_people_type_and_names_the_choices() -> None:
    assert parse_role(" PM ") is Role.PM
    with pytest.raises(ValueError, match="engineer, reviewer, pm, admin"):
        parse_role("owner")


# --- who is acting --------------------------------------------------------------------------------

def test_code_with_no_actor_acts_as_the_operator_named_by_workbench_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_USER", "ops@acme.com")
    access._process_default = None
    actor = access.current()
    assert (actor.email, actor.role, actor.via) == ("ops@acme.com", Role.ADMIN, "cli")


def test_acting_as_nests_and_restores() -> None:
    ana, pat = person("ana@acme.com", Role.ENGINEER), person("pat@acme.com", Role.PM)
    with access.acting_as(ana):
        with access.acting_as(pat):
            assert access.current() == pat
        assert access.current() == ana
    assert access.current().via == "cli"


def test_a_thread_keeps_its_actor_only_when_bound() -> None:
    """Threads start with an empty context: unbound work falls to the process default, which can refuse."""
    access.set_process_default(NOBODY)
    seen: dict[str, Actor] = {}
    with access.acting_as(person("ana@acme.com", Role.ENGINEER)):
        bound = threading.Thread(target=access.bind(lambda: seen.__setitem__("bound", access.current())))
        unbound = threading.Thread(target=lambda: seen.__setitem__("unbound", access.current()))
        for t in (bound, unbound):
            t.start()
            t.join()
    assert seen["bound"].email == "ana@acme.com"
    assert seen["unbound"] == NOBODY


# --- require, refuse, audit ------------------------------------------------------------------------

def test_require_refuses_records_and_names_the_role(store: Store) -> None:
    with (access.acting_as(person("rita@acme.com", Role.REVIEWER)),
          pytest.raises(Forbidden, match=r"rita@acme.com \(reviewer\) may not do price.set on model:gpt-4o: it needs "
                                       r"costs.write, and the reviewer role does not have it")):
        access.require(store, Permission.COSTS_WRITE, action="price.set", target="model:gpt-4o")
    [event] = audit.events(store)
    assert (event.actor, event.role, event.via, event.action, event.target, event.outcome) == (
        "rita@acme.com", "reviewer", "oidc", "price.set", "model:gpt-4o", "refused")
    assert event.detail == {"reason": "needs costs.write"}


def test_an_audit_event_rolls_back_with_the_change_it_describes(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as db:
        access.audit(db, "example.label", "example:1", label="spam")
        raise RuntimeError("the change failed")
    assert audit.count(store) == 0


# --- role assignments ------------------------------------------------------------------------------

def test_an_address_beats_its_domain_and_case_does_not_matter(store: Store) -> None:
    users.assign(store, "@Acme.com", "reviewer")
    users.assign(store, "Ana@ACME.com", Role.ADMIN)
    assert users.role_for(store, "ana@acme.com") is Role.ADMIN
    assert users.role_for(store, "BOB@acme.com") is Role.REVIEWER
    assert users.role_for(store, "eve@evil.com") is None
    assert users.role_for(store, "acme.com") is None
    assert users.actor_for(store, "Bob@Acme.com", "Bob").model_dump() == {
        "email": "bob@acme.com", "name": "Bob", "role": Role.REVIEWER, "via": "oidc"}


def test_a_unicode_lookalike_or_a_doubled_at_gets_no_role(store: Store) -> None:
    users.assign(store, "ken@acme.com", "admin")
    users.assign(store, "@acme.com", "reviewer")
    assert users.role_for(store, "\u212aen@acme.com") is None  # KELVIN SIGN lower-cases to 'k'
    assert users.actor_for(store, "\u212aen@acme.com").role is None
    assert users.role_for(store, "a@b@acme.com") is None
    assert users.role_for(store, "KEN@ACME.COM") is Role.ADMIN


def test_a_subdomain_or_lookalike_does_not_inherit_a_domain_role(store: Store) -> None:
    users.assign(store, "@acme.com", "engineer")
    assert users.role_for(store, "eve@evil-acme.com") is None
    assert users.role_for(store, "eve@acme.com.evil.com") is None
    assert users.role_for(store, "eve@mail.acme.com") is None


@pytest.mark.parametrize("who", ["", "ana", "@", "ana@", "@acme", "a b@acme.com", "<script>@x.com", "ana@acme.com; DROP"])
def test_assign_refuses_what_is_neither_an_address_nor_a_domain(store: Store, who: str) -> None:
    with pytest.raises(InvalidInput, match="neither an email address"):
        users.assign(store, who, "pm")
    with store.connect() as db:
        assert db.execute("SELECT count(*) FROM role_assignments").fetchone()[0] == 0


def test_assign_refuses_an_unknown_role(store: Store) -> None:
    with pytest.raises(InvalidInput, match="unknown role 'owner'"):
        users.assign(store, "ana@acme.com", "owner")


def test_reassigning_replaces_and_records_the_previous_role(store: Store) -> None:
    users.assign(store, "ana@acme.com", "reviewer")
    users.assign(store, "ana@acme.com", "pm")
    assert [(a.pattern, a.role) for a in users.list_assignments(store)] == [("ana@acme.com", "pm")]
    latest = audit.events(store, action="role.assign")[0]
    assert latest.detail == {"role": "pm", "previous": "reviewer"}


def test_the_last_admin_cannot_be_removed_or_demoted(store: Store) -> None:
    users.assign(store, "ana@acme.com", "admin")
    with pytest.raises(Conflict, match="only admin"):
        users.remove(store, "ana@acme.com")
    with pytest.raises(Conflict, match="only admin"):
        users.assign(store, "ana@acme.com", "pm")
    users.assign(store, "bo@acme.com", "admin")
    users.remove(store, "ana@acme.com")
    assert users.role_for(store, "ana@acme.com") is None


def test_removing_an_address_says_when_its_domain_still_gives_a_role(store: Store) -> None:
    users.assign(store, "@acme.com", "reviewer")
    users.assign(store, "ana@acme.com", "engineer")
    assert users.removal_words(store, users.remove(store, "ana@acme.com")) == (
        "ana@acme.com no longer has a role of their own (was engineer); through @acme.com they now have reviewer")
    users.assign(store, "bo@else.org", "pm")
    assert "refused from their next page on" in users.removal_words(store, users.remove(store, "bo@else.org"))


def test_removing_nobody_names_who_has_a_role(store: Store) -> None:
    users.assign(store, "@acme.com", "pm")
    with pytest.raises(NotFound, match="assigned: @acme.com"):
        users.remove(store, "ana@acme.com")


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.REVIEWER, Role.PM])
def test_only_an_admin_manages_roles_or_reads_the_trail(store: Store, role: Role) -> None:
    with access.acting_as(person("mallory@acme.com", role)):
        with pytest.raises(Forbidden):
            users.assign(store, "mallory@acme.com", "admin")
        with pytest.raises(Forbidden):
            users.list_assignments(store)
        with pytest.raises(Forbidden):
            audit.events(store)
    assert users.role_for(store, "mallory@acme.com") is None
    refused = audit.events(store, outcome="refused")
    assert {e.action for e in refused} == {"role.assign", "role.list", "audit.read"}
    assert {e.actor for e in refused} == {"mallory@acme.com"}


def test_a_signed_in_admin_assigns_under_their_own_name(store: Store) -> None:
    with access.acting_as(person("ana@acme.com", Role.ADMIN)):
        found = users.assign(store, "@acme.com", "reviewer")
    assert found.created_by == "ana@acme.com"
    assert audit.events(store, actor="ANA@acme.com")[0].action == "role.assign"


# --- reading the trail -----------------------------------------------------------------------------

def test_filters_by_area_outcome_time_and_target(store: Store) -> None:
    with store.write() as db:
        access.audit(db, "job.launch", "job:1")
        access.audit(db, "job.cancel", "job:1")
        access.audit(db, "jobs_x.other", "job:2")  # an area named like a prefix must not match 'job'
        access.audit(db, "example.label", "example:9")
    assert {e.action for e in audit.events(store, action="job")} == {"job.launch", "job.cancel"}
    assert [e.action for e in audit.events(store, action="job.cancel")] == ["job.cancel"]
    assert audit.count(store, target="job:1") == 2
    assert audit.count(store, since="2000-01-01") == 4
    assert audit.count(store, until="2000-01-01") == 0
    assert audit.count(store, action="job%") == 0
    assert audit.events(store, limit=2)[0].action == "example.label"  # newest first
    with pytest.raises(InvalidInput, match="since 'yesterday'"):
        audit.events(store, since="yesterday")
    with pytest.raises(InvalidInput, match="outcome"):
        audit.count(store, outcome="maybe")


# --- the terminal ---------------------------------------------------------------------------------

def cli(db: Path, *args: str, user: str = "ops") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), *args], capture_output=True, text=True,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "WORKBENCH_USER": user, "HOME": str(db.parent)},
                          timeout=120)


def test_cli_assigns_lists_and_shows_the_trail_under_the_operator(tmp_path: Path) -> None:
    db = tmp_path / "wb.db"
    assert cli(db, "users", "assign", "@acme.com", "REVIEWER").returncode == 0
    listed = json.loads(cli(db, "users", "list", "--json").stdout)
    assert [(a["pattern"], a["role"], a["created_by"]) for a in listed["assignments"]] == [("@acme.com", "reviewer", "ops")]
    who = json.loads(cli(db, "users", "whoami", "kim@ACME.com", "--json").stdout)
    assert who["actor"]["role"] == "reviewer"
    trail = json.loads(cli(db, "audit", "list", "--action", "role", "--json").stdout)
    assert trail["total"] == 1 and trail["events"][0]["actor"] == "ops"
    bad = cli(db, "users", "assign", "not-an-address", "pm", "--json")
    assert bad.returncode == 1 and "neither an email address" in json.loads(bad.stdout)["error"]
    bad_role = cli(db, "users", "assign", "a@acme.com", "owner", "--json")
    assert bad_role.returncode == 2 and "owner" in json.loads(bad_role.stdout)["error"]


def test_a_refusal_while_the_store_is_busy_is_still_a_refusal(tmp_path: Path) -> None:
    """A long split holds the write lock: the person must hear 'may not', not 'busy, try again'."""
    import sqlite3

    store = Store(tmp_path / "wb.db", busy_timeout=0.2)
    holder = sqlite3.connect(store.path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with access.acting_as(person("rita@acme.com", Role.REVIEWER)), pytest.raises(Forbidden):
            access.require(store, Permission.JOBS_WRITE, action="job.launch")
    finally:
        holder.rollback()
        holder.close()


def test_the_trail_keeps_no_control_characters_and_bounds_a_target(store: Store) -> None:
    with access.acting_as(person("rita@acme.com", Role.REVIEWER)), pytest.raises(Forbidden):
        access.require(store, Permission.ALERTS_WRITE, action="alert.create", target="alert:ctl\x1b[31m\x07\x00" + "x" * 500)
    [event] = audit.events(store)
    assert not any(ord(c) < 32 for c in event.target)
    assert event.target.startswith("alert:ctl\N{REPLACEMENT CHARACTER}[31m") and len(event.target) <= 201
