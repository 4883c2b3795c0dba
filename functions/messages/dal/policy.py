"""The tenant's message policy item (functions/messages/dal/items.py): read on every ingest batch, written by the
policy route with optimistic locking on its version.

    Policy            pk T#<t>#POLICY                     sk POLICY
    Tenant registry   pk T#_platform#MESSAGES_TENANTS     sk <tenant>

The registry lists the tenants whose messages the daily tiering (functions/messages/logic/tiers.py) goes through,
so it reads one partition instead of scanning the table: every policy write puts the tenant's registry item in the
same transaction (idempotent, so a registry item lost or never written is restored by the next change), and
`register` puts it for a tenant that has messages under the default policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.messages.dal.items import key, policy_key
from functions.messages.models.policy import ContentMode, MessagePolicy
from shared import clock
from shared.aws import LazyClient
from shared.keys import PLATFORM_TENANT, tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TENANTS_PK = tenant_key(PLATFORM_TENANT, "MESSAGES_TENANTS")
_DEFAULTS = MessagePolicy(tenant=PLATFORM_TENANT)


class StalePolicy(Exception):
    """The policy changed since it was read."""


class PolicyStore(Protocol):
    def get(self, tenant: str) -> MessagePolicy: ...

    def put(self, policy: MessagePolicy) -> MessagePolicy: ...


def _registry_item(tenant: str) -> dict[str, Any]:
    return {**key(TENANTS_PK, tenant), "tenant": {"S": tenant}}


def _days(item: dict[str, Any], name: str, default: int) -> int:
    # Policies stored before the tiers existed have no periods: they keep the defaults.
    return int(item[name]["N"]) if name in item else default


class DynamoPolicyStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table, self._client = table_name, client

    def get(self, tenant: str) -> MessagePolicy:
        """The tenant's policy; the default (metadata only) when none was ever set."""
        item = self.client.get_item(TableName=self._table, Key=policy_key(tenant), ConsistentRead=True).get("Item")
        if not item:
            return MessagePolicy(tenant=tenant)
        updated = item.get("updated_at", {}).get("S")
        return MessagePolicy(
            tenant=tenant,
            content=ContentMode(item["content"]["S"]),
            warm_after_days=_days(item, "warm_after_days", _DEFAULTS.warm_after_days),
            cold_after_days=_days(item, "cold_after_days", _DEFAULTS.cold_after_days),
            delete_after_days=_days(item, "delete_after_days", _DEFAULTS.delete_after_days),
            version=int(item["version"]["N"]),
            updated_at=datetime.fromisoformat(updated) if updated else None,
            updated_by=item.get("updated_by", {}).get("S"),
        )

    def put(self, policy: MessagePolicy) -> MessagePolicy:
        """Store `policy` as the next version of what was read (`policy.version`), and the tenant's registry item, in
        one transaction; StalePolicy if the policy moved."""
        from dataclasses import replace

        stored = replace(policy, version=policy.version + 1, updated_at=policy.updated_at or clock.now())
        item = {
            **policy_key(policy.tenant),
            "tenant": {"S": policy.tenant},
            "content": {"S": stored.content.value},
            "warm_after_days": {"N": str(stored.warm_after_days)},
            "cold_after_days": {"N": str(stored.cold_after_days)},
            "delete_after_days": {"N": str(stored.delete_after_days)},
            "version": {"N": str(stored.version)},
            "updated_at": {"S": clock.isoformat(stored.updated_at or clock.now())},
        }
        if stored.updated_by:
            item["updated_by"] = {"S": stored.updated_by}
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if policy.version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :read"
            put["ExpressionAttributeValues"] = {":read": {"N": str(policy.version)}}
        registry = _registry_item(policy.tenant)
        try:
            self.client.transact_write_items(
                TransactItems=[{"Put": put}, {"Put": {"TableName": self._table, "Item": registry}}]  # type: ignore[typeddict-item]
            )
        except self.client.exceptions.TransactionCanceledException as cancelled:
            reasons = cancelled.response.get("CancellationReasons") or []
            if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                raise StalePolicy(policy.tenant) from None
            raise
        return stored

    def register(self, tenant: str) -> None:
        """Put the tenant's registry item (idempotent: one unconditional PutItem)."""
        self.client.put_item(TableName=self._table, Item=_registry_item(tenant))

    def tenants(self) -> list[str]:
        """Every tenant that has stored a policy (the registry partition, in tenant order)."""
        out: list[str] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": TENANTS_PK}},
            "ProjectionExpression": "sk",
        }
        while True:
            page = self.client.query(**request)
            out.extend(item["sk"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
