"""Ingest API tokens: stored hashed, checked by hash, revocable, expiring, owned, role-bearing, and an admin's to manage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench.domain.access import Actor, Role
from workbench.errors import Conflict, Forbidden, InvalidInput, NotFound
from workbench.services import access, api_tokens, audit
from workbench.store import Store


def _last_used(store: Store) -> str | None:
    (token,) = api_tokens.list_tokens(store)
    return token.last_used_at


def _set_last_used(store: Store, when: datetime) -> None:
    with store.write() as db:
        db.execute("UPDATE api_tokens SET last_used_at = ?", [when.isoformat(timespec="seconds")])


def test_only_the_hash_and_a_short_prefix_are_stored(store: Store) -> None:
    made = api_tokens.create(store, "svc")
    with store.connect() as db:
        (stored,) = db.query("SELECT * FROM api_tokens")
    assert made.token not in str(stored)
    assert stored["prefix"] == made.token[:10] and len(stored["token_hash"]) == 64


@pytest.mark.parametrize("guess", ["", "wb_", "wb_x", "not-even-prefixed", "wb_" + "A" * 43])
def test_guesses_do_not_verify(store: Store, guess: str) -> None:
    api_tokens.create(store, "svc")
    assert api_tokens.verify(store, guess) is None


def test_a_token_with_the_right_prefix_but_wrong_rest_does_not_verify(store: Store) -> None:
    made = api_tokens.create(store, "svc")
    assert api_tokens.verify(store, made.token[:-1] + ("A" if made.token[-1] != "A" else "B")) is None
    assert api_tokens.verify(store, made.token) is not None


def test_use_is_recorded_at_most_once_a_minute(store: Store) -> None:
    made = api_tokens.create(store, "svc")
    assert _last_used(store) is None
    api_tokens.verify(store, made.token)
    first = _last_used(store)
    assert first is not None
    recent = datetime.now(UTC) - timedelta(seconds=10)
    _set_last_used(store, recent)
    api_tokens.verify(store, made.token)
    assert _last_used(store) == recent.isoformat(timespec="seconds")
    _set_last_used(store, datetime.now(UTC) - timedelta(minutes=2))
    api_tokens.verify(store, made.token)
    assert _last_used(store) >= first  # type: ignore[operator]


def test_names_are_unique_among_active_tokens(store: Store) -> None:
    api_tokens.create(store, "svc")
    with pytest.raises(Conflict, match="already exists"):
        api_tokens.create(store, "svc")
    api_tokens.revoke(store, "svc")
    with pytest.raises(NotFound, match="no active token named 'svc'"):
        api_tokens.revoke(store, "svc")
    assert api_tokens.create(store, "svc").name == "svc"
    assert [t.revoked_at is None for t in api_tokens.list_tokens(store)] == [False, True]


def test_a_bad_name_says_what_is_allowed(store: Store) -> None:
    with pytest.raises(InvalidInput, match="1-64 letters"):
        api_tokens.create(store, "bad/name")


# ------------------------------------------------------------------ owners, roles, expiry, admins only


def test_a_token_belongs_to_its_owner_carries_its_role_and_names_its_creator(store: Store) -> None:
    admin = Actor(email="root@acme.com", role=Role.ADMIN, via="oidc")
    with access.acting_as(admin):
        mine = api_tokens.create(store, "mine")
        svc = api_tokens.create(store, "svc", role="PM", owner="Service:checkout", expires_days=7)
        ana = api_tokens.create(store, "ana", role=Role.REVIEWER, owner=" Ana@Acme.com ")
    assert (mine.owner, mine.role, mine.expires_at) == ("root@acme.com", "engineer", None)
    assert (svc.owner, svc.role) == ("service:checkout", "pm") and svc.expires_at is not None
    assert ana.owner == "ana@acme.com"
    listed = {t.name: t for t in api_tokens.list_tokens(store)}
    assert {t.created_by for t in listed.values()} == {"root@acme.com"}
    assert api_tokens.actor_of(listed["svc"]) == Actor(email="service:checkout", name="token svc", role=Role.PM,
                                                        via="token")
    assert api_tokens.actor_of(listed["ana"]).role == Role.REVIEWER


def test_a_token_made_before_owners_acts_as_itself_as_an_engineer(store: Store) -> None:
    api_tokens.create(store, "old")
    with store.write() as db:
        db.execute("UPDATE api_tokens SET owner = NULL")
    (old,) = api_tokens.list_tokens(store)
    assert api_tokens.actor_of(old) == Actor(email="token:old", name="token old", role=Role.ENGINEER, via="token")


def test_an_unknown_role_in_the_store_is_refused_everything(store: Store) -> None:
    api_tokens.create(store, "odd")
    with store.write() as db:
        db.execute("UPDATE api_tokens SET role = 'superuser'")
    (odd,) = api_tokens.list_tokens(store)
    assert api_tokens.actor_of(odd).role is None


@pytest.mark.parametrize(("owner", "words"), [
    ("@acme.com", "not a domain"), ("nobody", "one person's email"), ("service:", "service:NAME"),
    ("service:has space", "service:NAME"), ("", "one person's email"),
])
def test_a_bad_owner_says_what_an_owner_is(store: Store, owner: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        api_tokens.create(store, "svc", owner=owner)


@pytest.mark.parametrize(("kwargs", "words"), [({"role": "root"}, "unknown role 'root'"),
                                               ({"expires_days": 0}, "1 to 3650"),
                                               ({"expires_days": 4000}, "1 to 3650")])
def test_a_bad_role_or_expiry_is_refused(store: Store, kwargs: dict, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        api_tokens.create(store, "svc", **kwargs)


def test_an_expired_token_is_refused_like_a_revoked_one(store: Store) -> None:
    made = api_tokens.create(store, "svc", expires_days=1)
    assert api_tokens.check(store, made.token).valid is not None
    with store.write() as db:
        db.execute("UPDATE api_tokens SET expires_at = ?, last_used_at = NULL",
                   [(datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")])
    checked = api_tokens.check(store, made.token)
    assert checked.valid is None and checked.reason == "expired" and checked.named is not None
    assert api_tokens.verify(store, made.token) is None
    (listed,) = api_tokens.list_tokens(store)
    assert api_tokens.state(listed) == "expired" and listed.last_used_at is None  # a refused use is not a use


def test_check_says_why_a_token_was_refused(store: Store, tmp_path: Path) -> None:
    made = api_tokens.create(store, "svc")
    elsewhere = api_tokens.create(Store(tmp_path / "other.db"), "svc").token
    assert api_tokens.check(store, elsewhere).reason == "unknown"
    assert api_tokens.check(store, "Basic abc").reason == "unknown"
    forged = api_tokens.check(store, made.token[:-1] + ("A" if made.token[-1] != "A" else "B"))
    assert forged.reason == "forged" and forged.named is not None and forged.named.name == "svc"
    api_tokens.revoke(store, "svc")
    assert api_tokens.check(store, made.token).reason == "revoked"


ADMIN_CALLS = {
    "token.create": lambda store: api_tokens.create(store, "new"),
    "token.list": lambda store: api_tokens.list_tokens(store),
    "token.revoke": lambda store: api_tokens.revoke(store, "kept"),
}


@pytest.mark.parametrize("action", sorted(ADMIN_CALLS))
@pytest.mark.parametrize(("role", "allowed"), [(Role.ADMIN, True), (Role.ENGINEER, False), (Role.PM, False),
                                               (Role.REVIEWER, False), (None, False)])
def test_only_an_admin_manages_tokens(store: Store, action: str, role: Role | None, allowed: bool) -> None:
    api_tokens.create(store, "kept")  # as the operator, who is an admin
    with store.connect() as db:
        before = list(db.query("SELECT * FROM api_tokens"))
    person = Actor(email="pat@acme.com", role=role, via="oidc")
    with access.acting_as(person):
        if allowed:
            ADMIN_CALLS[action](store)
        else:
            with pytest.raises(Forbidden, match="pat@acme.com"):
                ADMIN_CALLS[action](store)
    with store.connect() as db:
        after = list(db.query("SELECT * FROM api_tokens"))
    assert (after != before) == (allowed and action != "token.list")
    (event,) = audit.events(store, action=action, actor="pat@acme.com") or [None]
    if allowed and action == "token.list":
        assert event is None  # reading the list changes nothing: no event
    else:
        assert event is not None and event.outcome == ("ok" if allowed else "refused")


def test_create_and_revoke_are_on_the_trail_without_the_token(store: Store) -> None:
    made = api_tokens.create(store, "svc", role=Role.PM, owner="service:dash", expires_days=3)
    api_tokens.revoke(store, "svc")
    revoked, created = audit.events(store, action="token")
    assert (created.action, created.target, created.outcome) == ("token.create", "token:svc", "ok")
    assert {k: created.detail[k] for k in ("name", "role", "owner", "expires_at")} == {
        "name": "svc", "role": "pm", "owner": "service:dash", "expires_at": made.expires_at}
    assert (revoked.action, revoked.detail["owner"]) == ("token.revoke", "service:dash")
    assert made.token not in str([created.detail, revoked.detail])
    assert created.actor == access.operator().email
