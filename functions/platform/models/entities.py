"""Entities of the platform domain."""

from __future__ import annotations

from datetime import datetime

from shared.models import Model


class Heartbeat(Model):
    """Proof that the scheduled health workflow ran end to end."""

    checked_at: datetime
    execution: str | None = None


class Identity(Model):
    tenant: str
    subject: str
    username: str | None
    roles: list[str]
