"""Entities of the platform domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Heartbeat(BaseModel):
    """Proof that the scheduled health workflow ran end to end."""

    checked_at: datetime
    execution: str | None = None


class Identity(BaseModel):
    tenant: str
    subject: str
    username: str | None
    roles: list[str]
