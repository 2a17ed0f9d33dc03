"""One small exception hierarchy: pages catch `WorkbenchError` and show its message; anything else is a bug."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class for every error a user can act on."""


class NotFound(WorkbenchError):
    """A dataset, example, version or rule that the caller named does not exist."""


class InvalidInput(WorkbenchError):
    """The caller gave something the workbench cannot accept; the message says what and where."""


class Conflict(WorkbenchError):
    """The request clashes with what is stored (a name taken, an edit that duplicates another example)."""


class ProviderError(WorkbenchError):
    """An outside system (AWS, OpenAI, a local trainer) failed; raised `from` the original exception."""


class Busy(WorkbenchError):
    """Another process held the store's write lock for longer than the busy timeout; trying again later works."""


class QueryTooSlow(WorkbenchError):
    """A filter the user chose would read too much of the store to answer in time; a narrower one will."""


class Forbidden(WorkbenchError):
    """The signed-in person's role does not allow this; the message names the role and what was refused."""
