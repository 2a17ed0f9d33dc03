"""The one protocol every fine-tuning backend implements, and the errors it raises.

A backend talks to one outside system (boto3, the openai SDK, a local training process) and never
touches the store: the jobs service calls it and writes what it returns through the store's write path.
Backends are built from settings and clients passed in, so tests point them at moto's server or a local
HTTP double with no special cases.
"""

from __future__ import annotations

from typing import Any, Protocol

from workbench.domain.jobs import BackendName, JobSnapshot, LaunchRequest, PollCursor, Submitted
from workbench.errors import InvalidInput


class BackendError(InvalidInput):
    """The provider refused or failed a call; the message says what and, where known, how to fix it."""


class MissingCredentials(BackendError):
    """Credentials or a required setting are missing or expired; the message names which."""


class Throttled(BackendError):
    """The provider asked us to slow down: retry later with backoff, nothing is lost."""


class JobNotFound(BackendError):
    """The job no longer exists on the provider's side (deleted, or another account)."""


class FineTuningBackend(Protocol):
    """Submit, poll and cancel fine-tuning jobs on one provider."""

    name: BackendName

    def preview(self, request: LaunchRequest) -> dict[str, Any]:
        """Return the exact request `submit` would send (file locations as they will be), with no call made."""
        ...

    def submit(self, request: LaunchRequest) -> Submitted:
        """Upload the files and create the job; raise BackendError (or a subclass) when the provider refuses."""
        ...

    def poll(self, provider_job_id: str, cursor: PollCursor) -> JobSnapshot:
        """Return the job's state and what is new since `cursor`; JobNotFound when it is gone."""
        ...

    def cancel(self, provider_job_id: str) -> None:
        """Ask the provider to stop the job; the next poll reports the outcome."""
        ...
