"""The due-date pages a policy change recomputes, and where its report goes: ports and their AWS adapters.

`DynamoDueStore` reads one due kind's sparse index (partition `tenant`, sort `<kind>_due`) a page at a time, and
brings one record's due date forward with an UpdateItem conditioned on the due date it read. `S3ReportStore` puts
a report once (`If-None-Match: *`); the export bucket's Object Lock keeps it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import from_item
from functions.retention.models.entities import DueKind, Vacancy
from functions.retention.models.people import Candidate, Registration
from shared import clock
from shared.aws import LazyClient

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DueEntity = Vacancy | Candidate | Registration

_ENTITY: dict[DueKind, type[Vacancy] | type[Candidate] | type[Registration]] = {
    DueKind.ARCHIVE: Vacancy,
    DueKind.REMOVAL: Vacancy,
    DueKind.APPLICANTS: Vacancy,
    DueKind.CANDIDATE: Candidate,
    DueKind.REGISTRATION: Registration,
}
_CURSOR_KEYS = frozenset({"pk", "sk", "tenant"})


class BadCursor(ValueError):
    """A cursor this store did not hand out (or one of another tenant or due kind)."""


@dataclass(frozen=True)
class DueRecord:
    """One record on a due kind's index: the entity and, opaque to logic, its key and stored due string."""

    entity: DueEntity
    due: datetime
    key: dict[str, Any]
    stored_due: str


class DueStore(Protocol):
    def page(
        self, tenant: str, kind: DueKind, cursor: str | None, limit: int
    ) -> tuple[list[DueRecord], str | None]: ...

    def bring_forward(self, record: DueRecord, kind: DueKind, due: datetime) -> bool:
        """Store `due` if the record's due date is still the one read; False when it changed meanwhile."""
        ...


class ReportStore(Protocol):
    def put_once(self, key: str, body: dict[str, Any]) -> bool:
        """Write the report unless one is already there; True if this call wrote it."""
        ...


class DynamoDueStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def page(self, tenant: str, kind: DueKind, cursor: str | None, limit: int) -> tuple[list[DueRecord], str | None]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": kind.index_name,
            "KeyConditionExpression": "tenant = :tenant",
            "ExpressionAttributeValues": {":tenant": {"S": tenant}},
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = _decode(cursor, tenant, kind)
        response = self.client.query(**request)
        entity = _ENTITY[kind]
        records = [
            DueRecord(
                entity=from_item(entity, item),
                due=datetime.fromisoformat(item[kind.attribute]["S"]),
                key={"pk": item["pk"], "sk": item["sk"]},
                stored_due=item[kind.attribute]["S"],
            )
            for item in response.get("Items", [])
        ]
        last = response.get("LastEvaluatedKey")
        return records, _encode(last) if last else None

    def bring_forward(self, record: DueRecord, kind: DueKind, due: datetime) -> bool:
        try:
            self.client.update_item(
                TableName=self._table,
                Key=record.key,
                UpdateExpression="SET #due = :new",
                ConditionExpression="#due = :old",
                ExpressionAttributeNames={"#due": kind.attribute},
                ExpressionAttributeValues={":new": {"S": clock.isoformat(due)}, ":old": {"S": record.stored_due}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _encode(key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def _decode(cursor: str, tenant: str, kind: DueKind) -> dict[str, Any]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise BadCursor("the cursor is not one this workflow handed out") from None
    expected = _CURSOR_KEYS | {kind.attribute}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) for v in plain.values())
        or plain["tenant"] != tenant
    ):
        raise BadCursor("the cursor is not one this workflow handed out")
    return {name: {"S": value} for name, value in plain.items()}
