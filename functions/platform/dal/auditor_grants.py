"""Where auditor grants are kept: the port of the management routes and its DynamoDB adapter on the platform table.

Each grant is two items written in one transaction (the item shape and keys are shared/access_grants.py's):
the grantee's copy, which the permission check reads, and the tenant's copy, which the routes list and read by
id. A revocation updates both in one transaction too, so the check never sees a grant the routes call revoked.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Protocol

from shared import clock
from shared.access_grants import (
    AuditorGrant,
    DynamoGrantReader,
    grant_from_item,
    grant_to_item,
    grantee_pk,
    is_grant_id,
    tenant_grants_pk,
)
from shared.errors import BadRequest


class GrantExists(Exception):
    """A grant with this id is already stored (an id collision: the caller draws a new id)."""


class AuditorGrantStore(Protocol):
    def create(self, grant: AuditorGrant) -> None: ...

    def get(self, tenant: str, grant_id: str) -> AuditorGrant | None: ...

    def page(self, tenant: str, *, limit: int, cursor: str | None) -> tuple[list[AuditorGrant], str | None]: ...

    def revoke(self, grant: AuditorGrant, *, at: datetime, by: str, reason: str) -> bool: ...


def _encode_cursor(last: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": last["sk"]["S"]}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        sk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["sk"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest("cursor is not one this API issued") from None
    if not isinstance(sk, str) or not is_grant_id(sk):
        raise BadRequest("cursor is not one this API issued")
    return sk


class DynamoAuditorGrantStore(DynamoGrantReader):
    """The management side of the grants; `grants_of` (the permission check's read) and the constructor
    `(table_name, client=None)` are inherited."""

    def create(self, grant: AuditorGrant) -> None:
        absent = "attribute_not_exists(pk)"
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": grant_to_item(grant, grantee_pk(grant.tenant, grant.grantee)),
                            "ConditionExpression": absent,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": grant_to_item(grant, tenant_grants_pk(grant.tenant)),
                            "ConditionExpression": absent,
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException:
            raise GrantExists(grant.grant_id) from None

    def get(self, tenant: str, grant_id: str) -> AuditorGrant | None:
        item = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": tenant_grants_pk(tenant)}, "sk": {"S": grant_id}},
            ConsistentRead=True,
        ).get("Item")
        return grant_from_item(item) if item else None

    def page(self, tenant: str, *, limit: int, cursor: str | None) -> tuple[list[AuditorGrant], str | None]:
        """Up to `limit` of the tenant's grants, newest first, from after `cursor`; the next cursor or None."""
        pk = tenant_grants_pk(tenant)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
            "ScanIndexForward": False,  # grant ids start with the time they were given
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": _decode_cursor(cursor)}}
        page = self.client.query(**kwargs)
        grants = [grant_from_item(item) for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return grants, (_encode_cursor(last) if last else None)

    def revoke(self, grant: AuditorGrant, *, at: datetime, by: str, reason: str) -> bool:
        """Revoke both copies at once; False when the grant was already revoked (the first revocation stands)."""
        values = {":at": {"S": clock.isoformat(at)}, ":by": {"S": by}, ":why": {"S": reason}}
        updates: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": pk}, "sk": {"S": grant.grant_id}},
                    "UpdateExpression": "SET revoked_at = :at, revoked_by = :by, revoke_reason = :why",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    "ExpressionAttributeValues": values,
                }
            }
            for pk in (grantee_pk(grant.tenant, grant.grantee), tenant_grants_pk(grant.tenant))
        ]
        try:
            self.client.transact_write_items(TransactItems=updates)
        except self.client.exceptions.TransactionCanceledException:
            return False
        return True
