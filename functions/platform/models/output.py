"""Response models of the platform routes (the handler layer owns them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from functions.platform.models.entities import HealthStatus
from shared.auth import ActorKind, Role, Scope
from shared.models import Model


class VersionsOutput(Model):
    service: str = Field(description="Version of this backend")
    python: str
    powertools: str


class HealthOutput(Model):
    status: HealthStatus = Field(
        description=(
            "`ok` when the function answers and the scheduled health workflow completed recently; `degraded` when "
            "its last heartbeat is older than the configured threshold (`HEALTH_STALE_AFTER_SECONDS`) or missing. "
            "Both are answered with HTTP 200: the API itself is up, and a monitor reads `status`."
        ),
        examples=["ok"],
    )
    versions: VersionsOutput
    now: datetime = Field(description="The service clock (UTC); the local runtime can move it forward")
    last_heartbeat: datetime | None = Field(description="When the scheduled health workflow last completed")


class MeOutput(Model):
    tenant: str = Field(description="The tenant of the verified token")
    actor: ActorKind = Field(
        description="`user` for a person's ID token, `integration` for a machine client's access token",
        examples=["user"],
    )
    subject: str = Field(description="The token's subject (`sub`): the user, or the integration's client id")
    username: str | None = None
    roles: list[Role] = Field(description="Roles carried by a person's token, sorted; empty for an integration")
    scopes: list[Scope] = Field(
        description="Scopes of an integration's token, without the `ats/` prefix, sorted; empty for a person"
    )
