"""Create, list, revoke and check the ingest API's bearer tokens.

A token is shown once, when created; the store keeps its SHA-256 hash and a short clear prefix.
Checking a token finds the rows with its prefix and compares hashes in constant time, so the
answer's timing says nothing about how close a guess was. A use is recorded at most once a
minute per token, so a busy client does not turn every request into a write.

A token belongs to someone (a person's email, or `service:NAME` for a service account) and carries
a role; the API acts as that owner with that role, so a PM's dashboard token can read an experiment's
assignment but not send predictions. Tokens are an admin's to hand out (`users.manage`): a token is
a standing credential, and its role may be wider than its creator's reviewers ever need. An expired
token is refused exactly like a revoked one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from workbench.domain.access import ROLE_PERMISSIONS, Actor, Permission, Role, parse_role
from workbench.errors import Conflict, Forbidden, InvalidInput, NotFound, WorkbenchError
from workbench.services import access, users
from workbench.store import Store, utcnow
from workbench.store import api_tokens as rows
from workbench.store import audit as audit_rows
from workbench.store.api_tokens import StoredToken, TokenRow

log = logging.getLogger(__name__)

TOKEN_PREFIX = "wb_"
PREFIX_CHARS = 10
"""Characters kept in clear: 'wb_' and 7 random ones, enough to tell tokens apart, far too few to guess the rest."""
TOUCH_EVERY = timedelta(minutes=1)
MAX_EXPIRES_DAYS = 3650
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_SERVICE = re.compile(r"^service:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

State = Literal["active", "expired", "revoked"]
Reason = Literal["missing", "unknown", "forged", "revoked", "expired", "owner"]
"""Why a request's token was refused, for the audit trail only: the caller is told the same thing whatever it is."""


class NewToken(BaseModel):
    name: str
    token: str = Field(description="The bearer token itself: shown once, never stored.")
    prefix: str
    created_at: str
    role: str
    owner: str
    expires_at: str | None


@dataclass(frozen=True)
class Checked:
    """The answer to a presented token: the row it is, when valid; else why not and which row it points at."""

    valid: TokenRow | None
    reason: Reason | None = None
    named: TokenRow | None = None
    """The stored token it is (revoked, expired) or whose prefix it copies (forged): who the trail should name."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(store: Store, name: str, *, role: Role | str = Role.ENGINEER, owner: str | None = None,
           expires_days: int | None = None) -> NewToken:
    """Make a token named `name` acting as `owner` with `role`; the returned `token` is the only time its text is shown.

    `owner` is a person's email or `service:NAME` (default: whoever creates it); with `expires_days`
    the token is refused from that many days on.
    """
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInput(f"token name {name!r} must be 1-64 letters, digits, spaces, '.', '_' or '-', starting "
                           "with a letter or digit")
    wanted_role = _role(role)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise InvalidInput(f"expires_days {expires_days} must be 1 to {MAX_EXPIRES_DAYS} (or leave it out for a "
                           "token that does not expire)")
    chosen_owner = _owner(owner) if owner is not None else None
    creator = access.require(store, Permission.USERS_MANAGE, action="token.create", target=f"token:{name}")
    chosen_owner = chosen_owner or creator.email
    if not _owner_covers(store, chosen_owner, wanted_role):
        held = users.role_for(store, chosen_owner)
        message = (f"{chosen_owner} has role {held.value if held else 'none'}, so a token they own cannot have role "
                   f"{wanted_role.value}: give the token a role within theirs, or make a service account its owner "
                   "(service:NAME)")
        access.refuse(store, "token.create", f"token:{name}", reason=message)
        raise Forbidden(message)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    created = now.isoformat(timespec="seconds")
    expires = None if expires_days is None else (now + timedelta(days=expires_days)).isoformat(timespec="seconds")
    with store.write() as db:
        if rows.active_named(db, name) is not None:
            raise Conflict(f"a token named {name!r} already exists: revoke it first (workbench tokens revoke {name!r}) "
                           "or choose another name")
        rows.insert(db, name=name, token_hash=_hash(token), prefix=token[:PREFIX_CHARS], created_at=created,
                    role=wanted_role.value, owner=chosen_owner, created_by=creator.email, expires_at=expires)
        access.audit(db, "token.create", f"token:{name}", name=name, role=wanted_role.value, owner=chosen_owner,
                     expires_at=expires, prefix=token[:PREFIX_CHARS])
    return NewToken(name=name, token=token, prefix=token[:PREFIX_CHARS], created_at=created, role=wanted_role.value,
                    owner=chosen_owner, expires_at=expires)


def _owner_covers(store: Store, owner: str | None, role: Role | str) -> bool:
    """Say whether a person owning a token may still do all its role allows: a token never outranks its owner.

    Applies once the team assigns roles (a workbench with none has one local user) and to people,
    not service accounts. Removing or lowering someone's role thereby stops their tokens at once.
    """
    if not owner or "@" not in owner or not users.any_assigned(store):
        return True
    try:
        wanted = role if isinstance(role, Role) else Role(role)
    except ValueError:
        return False
    held = users.role_for(store, owner)
    return held is not None and ROLE_PERMISSIONS[wanted] <= ROLE_PERMISSIONS[held]


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return parse_role(role)
    except ValueError as exc:
        raise InvalidInput(f"role: {exc}") from None


def _owner(text: str) -> str:
    """Return an owner as stored: a person's address (lower-cased) or 'service:NAME'."""
    owner = text.strip()
    if owner.lower().startswith("service:"):
        owner = "service:" + owner[len("service:"):]
        if _SERVICE.match(owner):
            return owner
        raise InvalidInput(f"owner {text!r}: a service account is 'service:NAME', NAME being 1-64 letters, digits, "
                           "'.', '_' or '-' (e.g. service:checkout)")
    try:
        address = users.normalise(owner)
    except InvalidInput:
        address = ""
    if not address or address.startswith("@"):
        raise InvalidInput(f"owner {text!r} must be one person's email (ana@acme.com) or a service account "
                           "(service:checkout), not a domain")
    return address


def list_tokens(store: Store, *, include_revoked: bool = True) -> list[TokenRow]:
    access.require(store, Permission.USERS_MANAGE, action="token.list")
    with store.connect() as db:
        return rows.all_tokens(db, include_revoked=include_revoked)


def revoke(store: Store, name: str) -> TokenRow:
    """Revoke the active token named `name`; requests carrying it are refused from now on."""
    access.require(store, Permission.USERS_MANAGE, action="token.revoke", target=f"token:{name}")
    when = utcnow()
    with store.write() as db:
        found = rows.active_named(db, name)
        if found is None:
            names = [t.name for t in rows.all_tokens(db, include_revoked=False)]
            raise NotFound(f"no active token named {name!r} (active: {', '.join(names) or 'none'})")
        rows.revoke(db, found.id, when)
        access.audit(db, "token.revoke", f"token:{name}", name=name, owner=found.owner, role=found.role,
                     prefix=found.prefix)
    return found.model_copy(update={"revoked_at": when})


def state(token: TokenRow, now: datetime | None = None) -> State:
    """Say whether a token would be accepted now: revoked and expired tokens are refused alike."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and _expired(token.expires_at, now or datetime.now(UTC)):
        return "expired"
    return "active"


def _expired(expires_at: str, now: datetime) -> bool:
    try:
        when = datetime.fromisoformat(expires_at)
    except ValueError:
        return True  # an expiry nobody can read refuses rather than grants
    return (when if when.tzinfo else when.replace(tzinfo=UTC)) <= now


def check(store: Store, token: str) -> Checked:
    """Check a presented token: the row when it is active (its use recorded at most once a minute), else why not."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return Checked(None, "unknown")
    wanted = _hash(token)
    with store.connect() as db:
        matches = rows.candidates(db, token[:PREFIX_CHARS])
    found: StoredToken | None = None
    for row in matches:
        if hmac.compare_digest(row.token_hash, wanted):
            found = row
    if found is None:
        return Checked(None, "forged", _public(matches[0])) if matches else Checked(None, "unknown")
    public = _public(found)
    now = datetime.now(UTC)
    current = state(public, now)
    if current != "active":
        return Checked(None, current, public)
    if not _owner_covers(store, public.owner, public.role):
        return Checked(None, "owner", public)
    if found.last_used_at is None or found.last_used_at < (now - TOUCH_EVERY).isoformat(timespec="seconds"):
        with store.write() as db:
            rows.touch(db, found.id, now.isoformat(timespec="seconds"), (now - TOUCH_EVERY).isoformat(timespec="seconds"))
    return Checked(public, None, public)


def verify(store: Store, token: str) -> TokenRow | None:
    """Return the active token row `token` belongs to, or None (unknown, forged, revoked or expired)."""
    return check(store, token).valid


def _public(row: StoredToken) -> TokenRow:
    return TokenRow(**row.model_dump(exclude={"token_hash"}))


def actor_of(token: TokenRow) -> Actor:
    """Who a request carrying `token` acts as: its owner (or the token itself) with the token's role."""
    try:
        role: Role | None = Role(token.role)
    except ValueError:
        role = None  # a role this version does not know: refused everything
    return Actor(email=token.owner or f"token:{token.name}", name=f"token {token.name}", role=role, via="token")


def record_refusal(store: Store, actor: Actor, action: str, target: str, *, reason: str, **detail: Any) -> None:
    """Write a refused API request to the audit trail in its own short write; a busy store loses the event, not the answer.

    The API calls this at most once a minute per (reason, token or client), so a flood of bad
    requests neither floods the trail nor queues behind the write lock.
    """
    try:
        with store.write() as db:
            audit_rows.insert(db, ts=utcnow(), actor=actor.email, role=actor.role.value if actor.role else None,
                              via=actor.via, action=action, target=target, outcome="refused",
                              detail={"reason": reason, **detail})
    except WorkbenchError as exc:
        log.warning("could not record a refused API request (%s %s: %s): %s", action, target, reason, exc)
