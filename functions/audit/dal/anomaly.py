"""The anomaly detector's counters in the audit table (functions/audit/logic/anomaly.py), written only by the
linker, with `dynamodb:UpdateItem` on these keys only (infra/constructs/audit_anomaly.py):

    Counter   pk T#<tenant>#AUDIT#ANOMALY#<window minutes>#<window start, yyyymmddThhmm>
              sk <kind>#<actor label, or ip:<address> for refusals at the gateway>
              count (ADD), kind, subject, window_start, window_end, expires_at (epoch seconds: the table's TTL),
              alert_id and alerted_at once the window's alert is claimed

Not part of the trail: the linker ignores the stream's records of these keys (their updates, their expiry).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from functions.audit.models.anomaly import Window, WindowTotal
from shared import clock
from shared.aws import LazyClient
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ANOMALY = "ANOMALY"
KEEP_AFTER_WINDOW = timedelta(days=1)  # then the table's TTL removes the counter


def counter_key(window: Window) -> dict[str, dict[str, str]]:
    start = window.start.strftime("%Y%m%dT%H%M")
    return {
        "pk": {"S": tenant_key(window.tenant, "AUDIT", ANOMALY, str(window.minutes), start)},
        "sk": {"S": f"{window.subject.kind.value}#{window.subject.key}"},
    }


def is_counter_key(pk: str) -> bool:
    """Whether `pk` is a counter's partition key (`T#<tenant>#AUDIT#ANOMALY#...`)."""
    parts = pk.split("#")
    return len(parts) >= 5 and parts[0] == "T" and parts[2] == "AUDIT" and parts[3] == ANOMALY


class DynamoAnomalyCounters:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    def add(self, window: Window, count: int, now: datetime) -> WindowTotal:
        """One atomic UpdateItem: add `count` to the window, and return its total and whether it alerted."""
        answer = self.client.update_item(
            TableName=self._table,
            Key=counter_key(window),
            UpdateExpression=(
                "ADD #count :n SET #kind = :kind, subject = :subject, window_start = :start, window_end = :end, "
                "expires_at = :expires, updated_at = :now"
            ),
            ExpressionAttributeNames={"#count": "count", "#kind": "kind"},
            ExpressionAttributeValues={
                ":n": {"N": str(count)},
                ":kind": {"S": window.subject.kind.value},
                ":subject": {"S": window.subject.key},
                ":start": {"S": clock.isoformat(window.start)},
                ":end": {"S": clock.isoformat(window.end)},
                ":expires": {"N": str(int((window.end + KEEP_AFTER_WINDOW).timestamp()))},
                ":now": {"S": clock.isoformat(now)},
            },
            ReturnValues="ALL_NEW",
        )
        attributes = answer.get("Attributes") or {}
        return WindowTotal(count=int(attributes["count"]["N"]), alerted="alert_id" in attributes)

    def claim(self, window: Window, alert_id: str, now: datetime) -> bool:
        """Mark the window's alert as raised; False when it already was."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=counter_key(window),
                UpdateExpression="SET alert_id = :id, alerted_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(alert_id)",
                ExpressionAttributeValues={":id": {"S": alert_id}, ":now": {"S": clock.isoformat(now)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, window: Window, alert_id: str) -> None:
        """Give the claim back (its alert could not be published); nothing when another holds it."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=counter_key(window),
                UpdateExpression="REMOVE alert_id, alerted_at",
                ConditionExpression="alert_id = :id",
                ExpressionAttributeValues={":id": {"S": alert_id}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return
