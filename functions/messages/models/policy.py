"""A tenant's message policy: what is kept of a message (metadata only, or its content too) and for how long."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


# Where a message is, by its age (its first event) and the tenant's policy (functions/messages/logic/tiers.py).
class Tier(StrEnum):
    HOT = "hot"  # the whole message in DynamoDB
    WARM = "warm"  # a stub without content in DynamoDB; the whole item in the archive bucket (S3 Standard-IA)
    COLD = "cold"  # the same, the archived item in S3 Glacier Instant Retrieval (read back in milliseconds)


MIN_TIER_DAYS = 1
MAX_TIER_DAYS = 3650  # ten years
TIER_RULE = f"{MIN_TIER_DAYS} <= warm_after_days < cold_after_days < delete_after_days <= {MAX_TIER_DAYS}"


class ContentMode(StrEnum):
    METADATA = "metadata"  # ids, parties, statuses and times; subject and body are dropped on arrival
    FULL = "full"  # the content too, sealed per field and searchable through keyed digests


@dataclass(frozen=True)
class MessagePolicy:
    """The default (no policy set) keeps metadata only: a tenant opts in to keeping content. A message moves to the
    warm tier after `warm_after_days`, to the cold tier after `cold_after_days`, and is deleted after
    `delete_after_days` unless a legal hold covers it (days since its first event; `TIER_RULE` orders them)."""

    tenant: str
    content: ContentMode = ContentMode.METADATA
    warm_after_days: int = 90
    cold_after_days: int = 365
    delete_after_days: int = 730
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None
