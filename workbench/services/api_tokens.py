"""Create, list, revoke and check the ingest API's bearer tokens.

A token is shown once, when created; the store keeps its SHA-256 hash and a short clear prefix.
Checking a token finds the rows with its prefix and compares hashes in constant time, so the
answer's timing says nothing about how close a guess was. A use is recorded at most once a
minute per token, so a busy client does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.store import Store, utcnow
from workbench.store import api_tokens as rows
from workbench.store.api_tokens import TokenRow

TOKEN_PREFIX = "wb_"
PREFIX_CHARS = 10
"""Characters kept in clear: 'wb_' and 7 random ones, enough to tell tokens apart, far too few to guess the rest."""
TOUCH_EVERY = timedelta(minutes=1)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


class NewToken(BaseModel):
    name: str
    token: str = Field(description="The bearer token itself: shown once, never stored.")
    prefix: str
    created_at: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(store: Store, name: str) -> NewToken:
    """Make a token named `name`; the returned `token` is the only time its text is available."""
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInput(f"token name {name!r} must be 1-64 letters, digits, spaces, '.', '_' or '-', starting "
                           "with a letter or digit")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with store.write() as db:
        if rows.active_named(db, name) is not None:
            raise Conflict(f"a token named {name!r} already exists: revoke it first (workbench tokens revoke {name!r}) "
                           "or choose another name")
        rows.insert(db, name=name, token_hash=_hash(token), prefix=token[:PREFIX_CHARS], created_at=now)
    return NewToken(name=name, token=token, prefix=token[:PREFIX_CHARS], created_at=now)


def list_tokens(store: Store, *, include_revoked: bool = True) -> list[TokenRow]:
    with store.connect() as db:
        return rows.all_tokens(db, include_revoked=include_revoked)


def revoke(store: Store, name: str) -> TokenRow:
    """Revoke the active token named `name`; requests carrying it are refused from now on."""
    with store.write() as db:
        found = rows.active_named(db, name)
        if found is None:
            names = [t.name for t in rows.all_tokens(db, include_revoked=False)]
            raise NotFound(f"no active token named {name!r} (active: {', '.join(names) or 'none'})")
        rows.revoke(db, found.id, utcnow())
    return found.model_copy(update={"revoked_at": utcnow()})


def verify(store: Store, token: str) -> TokenRow | None:
    """Return the active token row `token` belongs to, or None; records the use at most once a minute."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    wanted = _hash(token)
    with store.connect() as db:
        matches = rows.candidates(db, token[:PREFIX_CHARS])
    found = None
    for row in matches:
        if hmac.compare_digest(row.token_hash, wanted):
            found = row
    if found is None or found.revoked_at is not None:
        return None
    now = datetime.now(UTC)
    if found.last_used_at is None or found.last_used_at < (now - TOUCH_EVERY).isoformat(timespec="seconds"):
        with store.write() as db:
            rows.touch(db, found.id, now.isoformat(timespec="seconds"), (now - TOUCH_EVERY).isoformat(timespec="seconds"))
    return TokenRow(**found.model_dump(exclude={"token_hash"}))
