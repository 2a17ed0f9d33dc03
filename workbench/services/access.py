"""Who is acting, whether they may, and the audit trail of what they did.

The actor travels in a ContextVar rather than as an argument to every service function: a page
sets it once per script run, the API once per request, the CLI once per process, and every service
below reads it. Threads do not inherit a ContextVar, so work handed to a thread is wrapped with
`bind` (or started under `contextvars.copy_context().run`). A thread that was not bound gets the
process default: the local operator on a workbench without sign-in, and in a signed-in deployment
an actor with no role, so forgetting to bind refuses rather than grants.

`require` is the service layer's check. A page hides what a role may not use, but the refusal that
counts is here, below every caller (page, CLI, API), and each refusal is written to the trail.
"""

from __future__ import annotations

import contextvars
import getpass
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from sqlite_utils import Database

from workbench.domain.access import Actor, Permission, Role
from workbench.errors import Busy, Forbidden
from workbench.store import Store, utcnow
from workbench.store import audit as audit_rows

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def operator() -> Actor:
    """The person at this machine's terminal: the CLI and the background processes act as them.

    They can open the store file directly, so giving them every permission hides nothing; what the
    trail needs is their name, from WORKBENCH_USER or the login name.
    """
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    name = os.environ.get("WORKBENCH_USER", "").strip() or login
    return Actor(email=name, name=name, role=Role.ADMIN, via="cli")


def local_user() -> Actor:
    """The one user of a workbench with no sign-in configured (it runs on 127.0.0.1 and they own the file).

    Named like the operator, so the app, the CLI and the review queue call the same person by one name.
    """
    op = operator()
    return Actor(email=op.email, name=op.name, role=Role.ADMIN, via="local")


_process_default: Actor | None = None
_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("workbench_actor", default=None)
_resolver: Callable[[], Actor | None] | None = None


def set_process_default(actor: Actor) -> None:
    """Set who unbound code acts as in this process (a signed-in app sets an actor with no role)."""
    global _process_default
    _process_default = actor


def set_resolver(resolver: Callable[[], Actor | None] | None) -> None:
    """Ask `resolver` who is acting when no actor was set in this context (None from it: the process default).

    The app's gate sets the actor for a page run, but a widget callback runs before the page and a
    fragment rerun without it; the resolver finds the Streamlit session's actor for those.
    """
    global _resolver
    _resolver = resolver


def current() -> Actor:
    """Return the actor of this context: the one set by `acting_as`, else the resolver's, else the process default."""
    actor = _current.get()
    if actor is not None:
        return actor
    if _resolver is not None and (actor := _resolver()) is not None:
        return actor
    if _process_default is None:
        set_process_default(operator())
    assert _process_default is not None
    return _process_default


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Run a block as `actor`; the previous actor comes back when it ends."""
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def set_current(actor: Actor) -> None:
    """Make `actor` the actor of this context until it ends (a Streamlit script run: one per thread)."""
    _current.set(actor)


def bind(fn: Callable[P, T]) -> Callable[P, T]:
    """Wrap `fn` so that, run on another thread, it acts as whoever is acting now."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return context.copy().run(fn, *args, **kwargs)

    return run


def can(permission: Permission) -> bool:
    """Say whether the current actor may do it; for hiding what a page should not offer (no trail entry)."""
    return current().can(permission)


def require(store: Store, permission: Permission, *, action: str, target: str = "") -> Actor:
    """Return the current actor if they may do `permission`; otherwise record the refusal and raise Forbidden."""
    actor = current()
    if actor.can(permission):
        return actor
    refuse(store, action, target, reason=f"needs {permission.value}")
    role = f"the {actor.role.value} role does not have it" if actor.role else "you have no role here"
    raise Forbidden(
        f"{actor.label} may not do {action}{' on ' + target if target else ''}: it needs {permission.value}, and "
        f"{role}; ask an admin for a role that allows it"
    )


def refuse(store: Store, action: str, target: str = "", *, reason: str, actor: Actor | None = None) -> None:
    """Write a refused attempt to the trail in its own short transaction (nothing else was written).

    A store busy past its timeout (a long split holds the lock) loses the event to the log rather
    than turn the refusal into "busy, try again": the person must hear that they may not, not that
    they should retry something they never can.
    """
    who = actor or current()
    try:
        with store.write() as db:
            _insert(db, who, action, target, "refused", {"reason": reason})
    except Busy as exc:
        log.warning("could not record refused %s %s by %s (%s): %s", action, target, who.email, reason, exc)


def audit(db: Database, action: str, target: str = "", **detail: Any) -> None:
    """Record that the current actor did `action` to `target`, inside the caller's write transaction.

    Inside the same transaction as the change, so the change and its record commit or roll back together.
    """
    _insert(db, current(), action, target, "ok", detail)


MAX_TARGET_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(text: str) -> str:
    """Make a name safe to print and to read back: no control characters (a refused call's target holds
    whatever was asked for, before validation), and bounded."""
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)
    return text if len(text) <= MAX_TARGET_CHARS else text[:MAX_TARGET_CHARS] + "…"


def _insert(db: Database, actor: Actor, action: str, target: str, outcome: str, detail: dict[str, Any]) -> None:
    audit_rows.insert(db, ts=utcnow(), actor=_printable(actor.email), role=actor.role.value if actor.role else None,
                      via=actor.via, action=action, target=_printable(target), outcome=outcome, detail=detail)


__all__ = ["acting_as", "audit", "bind", "can", "current", "local_user", "operator", "refuse", "require",
           "set_current", "set_process_default", "set_resolver"]
