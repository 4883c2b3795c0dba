"""Where heartbeats are kept: a port and its DynamoDB adapter."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from functions.platform.models.entities import Heartbeat
from shared.aws import LazyClient
from shared.keys import PLATFORM_TENANT, tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_KEY = {"pk": {"S": tenant_key(PLATFORM_TENANT, "HEALTH")}, "sk": {"S": "HEARTBEAT"}}


class HeartbeatStore(Protocol):
    def save(self, heartbeat: Heartbeat) -> None: ...

    def latest(self) -> Heartbeat | None: ...


class DynamoHeartbeatStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def save(self, heartbeat: Heartbeat) -> None:
        item = {**_KEY, "checked_at": {"S": heartbeat.checked_at.isoformat()}}
        if heartbeat.execution:
            item["execution"] = {"S": heartbeat.execution}
        # Only move forward: a late, out-of-order workflow run must not hide a newer heartbeat.
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(checked_at) OR checked_at < :at",
                ExpressionAttributeValues={":at": item["checked_at"]},
            )

    def latest(self) -> Heartbeat | None:
        item = self.client.get_item(TableName=self._table, Key=_KEY).get("Item")
        if not item:
            return None
        return Heartbeat(
            checked_at=datetime.fromisoformat(item["checked_at"]["S"]),
            execution=item.get("execution", {}).get("S"),
        )
