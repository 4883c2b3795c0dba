"""Entities of the platform domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.models import Model


class Heartbeat(Model):
    """Proof that the scheduled health workflow ran end to end."""

    checked_at: datetime
    execution: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the caller is (built from an already validated Principal, so not re-validated)."""

    tenant: str
    subject: str
    username: str | None
    roles: list[str]
