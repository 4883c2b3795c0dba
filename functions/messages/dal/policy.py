"""The tenant's message policy item (functions/messages/dal/items.py): read on every ingest batch, written by the
policy route with optimistic locking on its version."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from functions.messages.dal.items import policy_key
from functions.messages.models.policy import ContentMode, MessagePolicy
from shared import clock
from shared.aws import LazyClient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class StalePolicy(Exception):
    """The policy changed since it was read."""


class PolicyStore(Protocol):
    def get(self, tenant: str) -> MessagePolicy: ...

    def put(self, policy: MessagePolicy) -> MessagePolicy: ...


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
            version=int(item["version"]["N"]),
            updated_at=datetime.fromisoformat(updated) if updated else None,
            updated_by=item.get("updated_by", {}).get("S"),
        )

    def put(self, policy: MessagePolicy) -> MessagePolicy:
        """Store `policy` as the next version of what was read (`policy.version`); StalePolicy if it moved."""
        from dataclasses import replace

        stored = replace(policy, version=policy.version + 1, updated_at=policy.updated_at or clock.now())
        item = {
            **policy_key(policy.tenant),
            "tenant": {"S": policy.tenant},
            "content": {"S": stored.content.value},
            "version": {"N": str(stored.version)},
            "updated_at": {"S": clock.isoformat(stored.updated_at or clock.now())},
        }
        if stored.updated_by:
            item["updated_by"] = {"S": stored.updated_by}
        condition = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if policy.version == 0
            else {
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": {":read": {"N": str(policy.version)}},
            }
        )
        try:
            self.client.put_item(TableName=self._table, Item=item, **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StalePolicy(policy.tenant) from None
        return stored
