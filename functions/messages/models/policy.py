"""A tenant's message policy: what is kept of a message (metadata only, or its content too) and for how long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ContentMode(StrEnum):
    METADATA = "metadata"  # ids, parties, statuses and times; subject and body are dropped on arrival
    FULL = "full"  # the content too, sealed per field and searchable through keyed digests


@dataclass(frozen=True)
class MessagePolicy:
    """The default (no policy set) keeps metadata only: a tenant opts in to keeping content."""

    tenant: str
    content: ContentMode = ContentMode.METADATA
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None
