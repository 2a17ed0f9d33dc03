"""Ingest API tokens: stored hashed, checked by hash, revocable, their use recorded at most once a minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import api_tokens
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
