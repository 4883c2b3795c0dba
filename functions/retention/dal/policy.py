"""Where a tenant's retention policy is kept: a port and its DynamoDB adapter (one item, `policy_key(tenant)`).

The item is the RetentionPolicy (dal/items.py `to_item`) plus `shortened`, the periods its last change made
shorter, so that a retried change can publish the same event again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import from_attribute, from_item, policy_key, to_item
from functions.retention.models.entities import RetentionPolicy
from shared.aws import LazyClient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class StalePolicy(Exception):
    """The stored policy is not at the version the writer expected."""


@dataclass(frozen=True)
class StoredPolicy:
    policy: RetentionPolicy
    shortened: tuple[str, ...] = ()  # the periods the change to this version made shorter


class PolicyStore(Protocol):
    def load(self, tenant: str) -> StoredPolicy | None: ...

    def save(self, policy: RetentionPolicy, *, shortened: tuple[str, ...]) -> None:
        """Write `policy` (version n) if the stored one is at version n-1 (none at all for n = 1)."""
        ...


class DynamoPolicyStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def load(self, tenant: str) -> StoredPolicy | None:
        item = self.client.get_item(TableName=self._table, Key=policy_key(tenant), ConsistentRead=True).get("Item")
        if not item:
            return None
        shortened = from_attribute(dict(item["shortened"])) if "shortened" in item else []
        return StoredPolicy(policy=from_item(RetentionPolicy, item), shortened=tuple(shortened))

    def save(self, policy: RetentionPolicy, *, shortened: tuple[str, ...]) -> None:
        previous = policy.version - 1
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous == 0
            else {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": {"N": str(previous)}},
            }
        )
        item = to_item(policy, policy_key(policy.tenant), shortened=list(shortened))
        try:
            self.client.put_item(TableName=self._table, Item=item, **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StalePolicy(policy.tenant) from None
