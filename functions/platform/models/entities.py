"""Entities of the platform domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.auth import ActorKind
from shared.models import Model


class Heartbeat(Model):
    """Proof that the scheduled health workflow ran end to end."""

    checked_at: datetime
    execution: str | None = None


class HealthStatus(StrEnum):
    OK = "ok"  # the function answers and the health workflow ran recently
    DEGRADED = "degraded"  # the function answers, but the last heartbeat is stale or missing


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    last_heartbeat: datetime | None


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the caller is (built from an already verified Actor, so not re-validated)."""

    tenant: str
    kind: ActorKind
    subject: str
    username: str | None
    roles: list[str]
    scopes: list[str]
