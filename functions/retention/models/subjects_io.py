"""Request and response models of the self-service-link, self-service and receipt routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from shared.models import Model

# --- self-service --------------------------------------------------------------------------------------------------


class LinkInput(Model):
    model_config = ConfigDict(extra="forbid")

    ttl_minutes: int = Field(default=60, ge=1, le=1440, description="How long the link is valid (1 to 1440 min)")


class LinkOutput(Model):
    link_id: str
    token: str = Field(description="Give it to the applicant only; it is valid once, until `expires_at`")
    expires_at: datetime


class SelfServiceInput(Model):
    """The applicant's one-time token: always in the body, never in a URL (URLs reach logs and histories)."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, max_length=2048)


class ReceiptOutput(Model):
    """The receipt of one subject request (GDPR Art. 12(3): answered within one month)."""

    request_id: str
    kind: str = Field(description="access, leave_talent_pool or erasure")
    person_id: str
    status: str = Field(description="completed, or held: a legal hold kept some records (see `blocking_holds`)")
    received_at: datetime
    deadline_at: datetime = Field(description="received_at plus one calendar month (GDPR Art. 12(3))")
    completed_at: datetime | None = None
    seconds_taken: float | None = None
    removed: dict[str, int] = Field(default_factory=dict, description="Records removed, per kind")
    blocking_holds: list[str] = Field(default_factory=list, description="Legal holds that kept records (Art. 17(3)(e))")
    export_key: str | None = Field(default=None, description="The subject-access export's object key (access)")


class AccessOutput(Model):
    receipt: ReceiptOutput
    export: dict[str, Any] = Field(description="What is held about the person (GDPR Art. 15)")
    export_key: str


# --- entities of the applicant's self-service (stored by dal/subjects.py) -----------------------------------------


class SelfServiceLink(Model):
    """One issued link: the token itself is never stored, only what it names and whether it was used."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    link_id: str
    person_id: str
    issued_at: datetime
    issued_by: str
    expires_at: datetime
    used_at: datetime | None = None
    used_for: str | None = None  # the request kind that consumed it
    request_id: str | None = None  # the subject request it became


class RemovedCounts(Model):
    """What one subject request removed, per kind."""

    model_config = ConfigDict(frozen=True)

    person: int = 0
    application: int = 0
    candidate: int = 0
    registration: int = 0
    export_version: int = 0


class SubjectRequest(Model):
    """A data subject's request and its receipt (GDPR Art. 12(3): one month to answer, and we count seconds)."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    request_id: str
    kind: str  # access | leave_talent_pool | erasure
    person_id: str
    link_id: str
    status: str  # received | completed | held
    received_at: datetime
    deadline_at: datetime
    completed_at: datetime | None = None
    seconds_taken: float | None = None
    removed: RemovedCounts = RemovedCounts()
    blocking_holds: frozenset[str] = frozenset()
    export_key: str | None = None
