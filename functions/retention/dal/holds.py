"""Where legal holds are kept, and how a hold reaches the records it covers.

A hold is one item in the tenant's hold partition (`hold_key`). Placing it adds its id to the `holds` string set of
every record it covers; releasing it deletes the id again (DynamoDB ADD/DELETE on a set are idempotent, so a
retried fan-out is harmless):
- a vacancy: every item in the vacancy's partition except fingerprints (they hold nothing personal and must keep
  catching re-applications);
- a person: the person item and their records found through the ByPerson index;
- an application: the application item.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import (
    BY_PERSON_INDEX,
    application_key,
    from_item,
    hold_key,
    person_key,
    person_pk,
    to_attribute,
    to_item,
    vacancy_key,
    vacancy_pk,
)
from functions.retention.models.entities import HoldSubject
from functions.retention.models.holds import LegalHold
from shared.aws import LazyClient
from shared.errors import BadRequest
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_FINGERPRINT_PREFIX = "FP#"


class HoldExists(Exception):
    """A hold with this id is already stored."""


class HoldStore(Protocol):
    def get(self, tenant: str, hold_id: str) -> LegalHold | None: ...

    def create(self, hold: LegalHold) -> None: ...

    def save_release(self, hold: LegalHold) -> bool: ...

    def page(
        self, tenant: str, *, active_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[LegalHold], str | None]: ...

    def subject_exists(self, hold: LegalHold) -> bool: ...

    def covered(self, hold: LegalHold) -> list[dict[str, Any]]: ...

    def mark(self, keys: list[dict[str, Any]], hold_id: str, *, add: bool) -> int: ...


def _encode_cursor(last: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": last["sk"]["S"]}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        sk = raw["sk"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest("cursor is not one this API issued") from None
    if not isinstance(sk, str) or not sk:
        raise BadRequest("cursor is not one this API issued")
    return sk


class DynamoHoldStore:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def get(self, tenant: str, hold_id: str) -> LegalHold | None:
        item = self.client.get_item(TableName=self._table, Key=hold_key(tenant, hold_id), ConsistentRead=True).get(
            "Item"
        )
        return from_item(LegalHold, item) if item else None

    def create(self, hold: LegalHold) -> None:
        try:
            self.client.put_item(
                TableName=self._table,
                Item=to_item(hold, hold_key(hold.tenant, hold.hold_id)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise HoldExists(hold.hold_id) from None

    def save_release(self, hold: LegalHold) -> bool:
        """Record the release once; False when the hold was already released (the first release stands)."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key=hold_key(hold.tenant, hold.hold_id),
                UpdateExpression="SET released_at = :at, released_by = :by, release_reason = :why",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(released_at)",
                ExpressionAttributeValues={
                    ":at": to_item_value(hold.released_at),
                    ":by": {"S": str(hold.released_by)},
                    ":why": {"S": str(hold.release_reason)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def page(
        self, tenant: str, *, active_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[LegalHold], str | None]:
        """Up to `limit` holds of the tenant in hold-id order, from after `cursor`; the next cursor or None."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": tenant_key(tenant, "HOLDS")}},
            "ConsistentRead": True,
        }
        if active_only:
            kwargs["FilterExpression"] = "attribute_not_exists(released_at)"
        if cursor:
            kwargs["ExclusiveStartKey"] = {
                "pk": {"S": tenant_key(tenant, "HOLDS")},
                "sk": {"S": _decode_cursor(cursor)},
            }
        found: list[LegalHold] = []
        while True:
            # The filter applies after the limit: keep reading until the page is full or the partition ends.
            page = self.client.query(**kwargs, Limit=limit - len(found))
            found.extend(from_item(LegalHold, item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if last is None:
                return found, None
            if len(found) >= limit:
                return found, _encode_cursor(last)
            kwargs["ExclusiveStartKey"] = last

    def subject_exists(self, hold: LegalHold) -> bool:
        key = self._subject_key(hold)
        return "Item" in self.client.get_item(
            TableName=self._table, Key=key, ConsistentRead=True, ProjectionExpression="pk"
        )

    def _subject_key(self, hold: LegalHold) -> dict[str, Any]:
        if hold.subject_kind is HoldSubject.VACANCY:
            return vacancy_key(hold.tenant, hold.subject_id)
        if hold.subject_kind is HoldSubject.PERSON:
            return person_key(hold.tenant, hold.subject_id)
        return application_key(hold.tenant, str(hold.vacancy_id), hold.subject_id)

    def covered(self, hold: LegalHold) -> list[dict[str, Any]]:
        """The keys of every record the hold covers (see the module docstring)."""
        if hold.subject_kind is HoldSubject.APPLICATION:
            return [self._subject_key(hold)]
        if hold.subject_kind is HoldSubject.VACANCY:
            pk = vacancy_pk(hold.tenant, hold.subject_id)
            items = self._query(
                {
                    "KeyConditionExpression": "pk = :pk",
                    "ExpressionAttributeValues": {":pk": {"S": pk}},
                    "ProjectionExpression": "pk, sk",
                    "ConsistentRead": True,
                }
            )
            return [{"pk": i["pk"], "sk": i["sk"]} for i in items if not i["sk"]["S"].startswith(_FINGERPRINT_PREFIX)]
        items = self._query(
            {
                "IndexName": BY_PERSON_INDEX,
                "KeyConditionExpression": "person_key = :p",
                "ExpressionAttributeValues": {":p": {"S": person_pk(hold.tenant, hold.subject_id)}},
                "ProjectionExpression": "pk, sk",
            }
        )
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
        own = person_key(hold.tenant, hold.subject_id)
        return keys if own in keys else [own, *keys]

    def _query(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, **params}
        while True:
            page = self.client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark(self, keys: list[dict[str, Any]], hold_id: str, *, add: bool) -> int:
        """Add (or delete) `hold_id` in the `holds` set of each existing record; the number of records touched."""
        touched = 0
        for item_key in keys:
            try:
                self.client.update_item(
                    TableName=self._table,
                    Key=item_key,
                    UpdateExpression=("ADD" if add else "DELETE") + " holds :h",
                    ConditionExpression="attribute_exists(pk)",  # a record removed meanwhile is not recreated
                    ExpressionAttributeValues={":h": {"SS": [hold_id]}},
                )
                touched += 1
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
        return touched


def to_item_value(value: Any) -> dict[str, Any]:
    attr = to_attribute(value)
    if attr is None:
        raise ValueError("a value is required")
    return attr
