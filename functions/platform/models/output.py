"""Response models of the platform routes (the handler layer owns them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.auth import Role
from shared.models import Model


class VersionsOutput(Model):
    service: str = Field(description="Version of this backend")
    python: str
    powertools: str


class HealthOutput(Model):
    status: str = Field(description="`ok` when the function answers", examples=["ok"])
    versions: VersionsOutput
    now: datetime = Field(description="The service clock (UTC); the local runtime can move it forward")
    last_heartbeat: datetime | None = Field(description="When the scheduled health workflow last completed")


class MeOutput(Model):
    tenant: str = Field(description="The tenant of the verified token")
    subject: str = Field(description="The token's subject (`sub`)")
    username: str | None = None
    roles: list[Role] = Field(description="Roles carried by the token, sorted")
