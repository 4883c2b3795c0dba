"""Just-in-time auditor access (issue 13): the grants a compliance officer gives an auditor, and the port that the
permission check reads them through.

A grant lets one user (the grantee, by `sub`) use the `auditor` role's permissions on the named resource kinds of
one tenant until `expires_at` (at most `MAX_GRANT_DURATION` after it is given), unless it is revoked first. The
kind of a permission is the prefix of its value (`audit:read` -> `audit`); only the kinds of `AuditorResourceKind`
are granted this way, so an auditor's own identity (`identity:read`) needs no grant.

Grants live in the platform table, each stored twice in one transaction (functions/platform/dal/auditor_grants.py):
- `T#<tenant>#GRANT#<grantee>` / `<grant id>`: what the permission check reads, one strongly consistent Query;
- `T#<tenant>#GRANTS` / `<grant id>`: the tenant's grants, for the management routes.
Nothing is cached: a revoked grant stops working on the next request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field

from shared import clock
from shared.aws import LazyClient
from shared.errors import DependencyFailure
from shared.keys import tenant_key
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The longest a grant may run, and the shortest: an audit engagement is bounded, and a grant that expires before
# anyone can use it is a mistake. Documented in docs/auditor-access.md.
MAX_GRANT_DURATION = timedelta(days=30)
MIN_GRANT_DURATION = timedelta(minutes=15)

GRANT_ID_PATTERN = r"^ag-\d{14}-[0-9a-f]{8}$"
# A Cognito `sub` (a UUID), or the subject of a federated or local token: never '#' or whitespace (key parts).
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$"
_GRANT_ID = re.compile(GRANT_ID_PATTERN)


class AuditorResourceKind(StrEnum):
    """What a grant covers: the permissions whose value starts with `<kind>:` (shared/permissions.py)."""

    AUDIT = "audit"
    MESSAGES = "messages"
    RETENTION = "retention"
    ASSETS = "assets"


class AuditorGrantStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def kind_of(permission: str) -> AuditorResourceKind | None:
    """The resource kind of a permission value (`messages:export` -> messages), or None when grants do not apply."""
    prefix = permission.split(":", 1)[0]
    return AuditorResourceKind(prefix) if prefix in AuditorResourceKind._value2member_map_ else None


@dataclass(frozen=True)
class AuditorGrant:
    """Time-bound access of `grantee` to the `kinds` of `tenant`, given by `granted_by` (an actor label)."""

    tenant: str
    grant_id: str
    grantee: str
    kinds: frozenset[AuditorResourceKind]
    reason: str
    granted_by: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def status(self, at: datetime) -> AuditorGrantStatus:
        """Revoked wins over expired: a revocation is a fact someone stated, an expiry only the passing of time."""
        if self.revoked_at is not None:
            return AuditorGrantStatus.REVOKED
        if at >= self.expires_at:
            return AuditorGrantStatus.EXPIRED
        return AuditorGrantStatus.ACTIVE


@dataclass(frozen=True)
class GrantCheck:
    """The answer for one permission check: the grant that allows it, or why none does (the audit reason)."""

    grant: AuditorGrant | None
    reason: str


def check_grants(grants: Iterable[AuditorGrant], kind: AuditorResourceKind, at: datetime) -> GrantCheck:
    """The active grant covering `kind` at `at` that runs longest, or the reason for refusing: `no active grant`
    (none covers the kind), `grant expired` or `grant revoked` (naming the latest grant that covered it)."""
    covering = [g for g in grants if kind in g.kinds]
    active = [g for g in covering if g.status(at) is AuditorGrantStatus.ACTIVE]
    if active:
        best = max(active, key=lambda g: (g.expires_at, g.grant_id))
        return GrantCheck(best, f"auditor grant {best.grant_id}")
    if not covering:
        return GrantCheck(None, f"no active grant for {kind.value}")
    latest = max(covering, key=lambda g: (g.granted_at, g.grant_id))
    if latest.status(at) is AuditorGrantStatus.REVOKED:
        return GrantCheck(None, f"grant revoked: {latest.grant_id}")
    return GrantCheck(None, f"grant expired: {latest.grant_id} at {clock.isoformat(latest.expires_at)}")


class GrantReader(Protocol):
    def grants_of(self, tenant: str, grantee: str) -> list[AuditorGrant]:
        """Every grant `grantee` was given in `tenant` (active or not), read consistently."""
        ...


# ---- the item shape (the platform domain's store writes what this reader reads) ---------------------------------


def grantee_pk(tenant: str, grantee: str) -> str:
    return tenant_key(tenant, "GRANT", grantee)


def tenant_grants_pk(tenant: str) -> str:
    return tenant_key(tenant, "GRANTS")


def is_grant_id(value: str) -> bool:
    return bool(_GRANT_ID.match(value))


def grant_to_item(grant: AuditorGrant, pk: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": grant.grant_id},
        "tenant": {"S": grant.tenant},
        "grant_id": {"S": grant.grant_id},
        "grantee": {"S": grant.grantee},
        "kinds": {"SS": sorted(k.value for k in grant.kinds)},
        "reason": {"S": grant.reason},
        "granted_by": {"S": grant.granted_by},
        "granted_at": {"S": clock.isoformat(grant.granted_at)},
        "expires_at": {"S": clock.isoformat(grant.expires_at)},
    }
    if grant.revoked_at is not None:
        item["revoked_at"] = {"S": clock.isoformat(grant.revoked_at)}
        item["revoked_by"] = {"S": str(grant.revoked_by)}
        item["revoke_reason"] = {"S": str(grant.revoke_reason)}
    return item


def grant_from_item(item: dict[str, Any]) -> AuditorGrant:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value["S"]) if value else None

    revoked_at = text("revoked_at")
    return AuditorGrant(
        tenant=item["tenant"]["S"],
        grant_id=item["grant_id"]["S"],
        grantee=item["grantee"]["S"],
        kinds=frozenset(AuditorResourceKind(k) for k in item["kinds"]["SS"]),
        reason=item["reason"]["S"],
        granted_by=item["granted_by"]["S"],
        granted_at=datetime.fromisoformat(item["granted_at"]["S"]),
        expires_at=datetime.fromisoformat(item["expires_at"]["S"]),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
        revoked_by=text("revoked_by"),
        revoke_reason=text("revoke_reason"),
    )


class DynamoGrantReader:
    """GrantReader on the platform table: one strongly consistent Query of the grantee's partition, no cache."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def grants_of(self, tenant: str, grantee: str) -> list[AuditorGrant]:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": grantee_pk(tenant, grantee)}},
            "ConsistentRead": True,  # a revocation written a moment ago must be seen
        }
        grants: list[AuditorGrant] = []
        try:
            while True:
                page = self.client.query(**kwargs)
                grants.extend(grant_from_item(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return grants
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (BotoCoreError, ClientError) as exc:
            raise DependencyFailure(f"auditor grants could not be read ({type(exc).__name__})") from None


# ---- which reader the permission check uses --------------------------------------------------------------------


class GrantReaderSettings(BaseSettings):
    """Functions whose routes auditors use read the grants from the platform table."""

    PLATFORM_TABLE_NAME: str = Field(min_length=3)


_override: GrantReader | None = None


def use_grant_reader(reader: GrantReader | None) -> None:
    """Serve every permission check of this process from `reader` (tests with fakes); None goes back to the table."""
    global _override
    _override = reader


def grant_reader() -> GrantReader:
    """The reader the permission check uses when its caller passes none: built on demand (only when an auditor is
    checked, so other functions' cold starts never pay for it) from `PLATFORM_TABLE_NAME`; ConfigurationError
    when the function was deployed without it."""
    if _override is not None:
        return _override
    return DynamoGrantReader(load_settings(GrantReaderSettings).PLATFORM_TABLE_NAME)
