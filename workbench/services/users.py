"""Roles by email address or by domain: assign, remove, list, and look up who someone is here.

An exact address beats its domain, so '@acme.com = reviewer' with 'ana@acme.com = admin' makes Ana an
admin and everyone else at Acme a reviewer. Addresses compare case-insensitively (mail providers
treat the domain so, and people type their own address in any case). The first admin of a signed-in
deployment is assigned from the terminal (`workbench users assign you@acme.com admin`), where the
operator already holds the store file.
"""

from __future__ import annotations

import re

from sqlite_utils import Database

from workbench.domain.access import Actor, Permission, Role, Via, parse_role
from workbench.errors import Conflict, InvalidInput, NotFound
from workbench.services import access
from workbench.store import Store, utcnow
from workbench.store import users as rows
from workbench.store.users import Assignment

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


def normalise(who: str) -> str:
    """Return `who` as stored: an address or '@domain', trimmed and lower-cased; refuse anything else."""
    text = who.strip().lower()
    if _DOMAIN.match(text) or (_EMAIL.match(text) and len(text) <= 254):
        return text
    raise InvalidInput(f"{who!r} is neither an email address (ana@acme.com) nor a domain (@acme.com)")


def assign(store: Store, who: str, role: str | Role) -> Assignment:
    """Give an address or a domain a role, replacing the one it had."""
    pattern = normalise(who)
    try:
        wanted = role if isinstance(role, Role) else parse_role(role)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    access.require(store, Permission.USERS_MANAGE, action="role.assign", target=f"user:{pattern}")
    with store.write() as db:
        before = rows.get(db, pattern)
        if before is not None and before.role == Role.ADMIN and wanted != Role.ADMIN:
            _keep_an_admin(db, pattern)
        rows.upsert(db, pattern=pattern, role=wanted.value, created_by=access.current().email, created_at=utcnow())
        access.audit(db, "role.assign", f"user:{pattern}", role=wanted.value,
                     previous=before.role if before else None)
        found = rows.get(db, pattern)
    assert found is not None
    return found


def remove(store: Store, who: str) -> Assignment:
    """Take away the role given to an address or domain; that person is refused from their next page on."""
    pattern = normalise(who)
    access.require(store, Permission.USERS_MANAGE, action="role.remove", target=f"user:{pattern}")
    with store.write() as db:
        before = rows.get(db, pattern)
        if before is None:
            known = ", ".join(a.pattern for a in rows.all_assignments(db)) or "none"
            raise NotFound(f"{pattern} has no role assigned (assigned: {known})")
        if before.role == Role.ADMIN:
            _keep_an_admin(db, pattern)
        rows.delete(db, pattern)
        access.audit(db, "role.remove", f"user:{pattern}", previous=before.role)
    return before


def removal_words(store: Store, removed: Assignment) -> str:
    """Say what removing `removed` left: an address may still have a role through its domain."""
    if not removed.pattern.startswith("@"):
        domain = "@" + removed.pattern.rsplit("@", 1)[1]
        still = role_for(store, removed.pattern)
        if still is not None:
            return (f"{removed.pattern} no longer has a role of their own (was {removed.role}); through {domain} "
                    f"they now have {still.value}")
        return f"{removed.pattern} no longer has a role (was {removed.role}): refused from their next page on"
    return f"{removed.pattern} no longer gives a role (was {removed.role}); addresses there with their own role keep it"


def _keep_an_admin(db: Database, pattern: str) -> None:
    if rows.count_role(db, Role.ADMIN.value) <= 1:
        raise Conflict(f"{pattern} is the only admin: assign another admin first, or nobody could manage roles "
                       "from the app (the terminal always can: workbench users assign EMAIL admin)")


def list_assignments(store: Store) -> list[Assignment]:
    access.require(store, Permission.USERS_MANAGE, action="role.list")
    with store.connect() as db:
        return rows.all_assignments(db)


def usable_address(email: str) -> str | None:
    """Return `email` lower-cased when it is a plain ASCII address, else None (it can hold no role).

    Checked before lower-casing: Python folds some non-ASCII letters into ASCII ones (the Kelvin
    sign 'K' becomes 'k'), so a look-alike address would otherwise become the person it imitates.
    """
    text = email.strip()
    if not text.isascii() or not _EMAIL.match(text) or len(text) > 254:
        return None
    return text.lower()


def role_for(store: Store, email: str) -> Role | None:
    """Return the role of `email`: its own assignment, else its domain's, else None."""
    address = usable_address(email)
    if address is None:
        return None
    domain = "@" + address.rsplit("@", 1)[1]
    with store.connect() as db:
        for pattern in (address, domain):
            found = rows.get(db, pattern)
            if found is not None:
                return Role(found.role)
    return None


def actor_for(store: Store, email: str, name: str = "", via: Via = "oidc") -> Actor:
    """Return who `email` is here: their name and their role (None when nobody gave them one)."""
    address = usable_address(email)
    if address is None:  # kept as given for the trail, with no role
        return Actor(email=email.strip(), name=name or email.strip(), role=None, via=via)
    return Actor(email=address, name=name or address, role=role_for(store, address), via=via)


def any_assigned(store: Store) -> bool:
    """Say whether any role is assigned yet: a signed-in deployment with none tells the first visitor how to start."""
    with store.connect() as db:
        return bool(rows.all_assignments(db))
