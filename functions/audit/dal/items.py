"""Reads the audit table's stores share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def latest_item(
    client: DynamoDBClient, table: str, pk: str, *, sk_prefix: str | None = None, **read: Any
) -> dict[str, Any] | None:
    """The item of partition `pk` with the greatest sort key (among those beginning with `sk_prefix`), or None:
    one consistent Query. `read` adds Query parameters (a projection and its names)."""
    condition, values = "pk = :pk", {":pk": {"S": pk}}
    if sk_prefix is not None:
        condition, values[":prefix"] = "pk = :pk AND begins_with(sk, :prefix)", {"S": sk_prefix}
    page = client.query(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
        **read,
    )
    items = page.get("Items", [])
    return dict(items[0]) if items else None
