"""Legal holds on messages in the messages table, the marks they leave on messages, and held-back erasures.

    Hold             pk T#<t>#MHOLDS    sk <hold id>
    Held-back erasure pk T#<t>#MERASE   sk <record kind>#<record id>#<vacancy id or ->

A hold marks each message it covers by adding its id to the message's `holds` string set (and releasing deletes
it): an UpdateItem per message, conditional on the message existing (a message removed meanwhile is not
recreated as a stub), that also adds 1 to the message's `version`. The version matters: the ingest consumer
writes whole messages conditionally on the version it read, so a mark made between its read and its write
makes its write stale; it reads again, and the mark is kept.

The tenant's active holds are one Query of the hold partition (filtered on `released_at`), which is what the
ingest consumer reads once per batch (logic/holds.py `ActiveHolds`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.messages.dal.items import key, message_key
from functions.messages.models.holds_io import MessageHold, MessageHoldSubject, PendingErasure
from shared import clock
from shared.aws import LazyClient
from shared.errors import BadRequest
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOLDS = "MHOLDS"
ERASURES = "MERASE"


class HoldExists(Exception):
    """A hold with this id is already stored."""


class HoldReader(Protocol):
    def active(self, tenant: str) -> list[MessageHold]: ...


class HoldStore(HoldReader, Protocol):
    def get(self, tenant: str, hold_id: str) -> MessageHold | None: ...

    def create(self, hold: MessageHold) -> None: ...

    def save_release(self, hold: MessageHold) -> bool: ...

    def save_progress(self, hold: MessageHold) -> None: ...

    def page(
        self, tenant: str, *, active_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[MessageHold], str | None]: ...

    def mark(self, tenant: str, message_ids: Iterable[str], hold_id: str, *, add: bool) -> int: ...


class ErasureLedger(Protocol):
    def put_pending(self, pending: PendingErasure) -> None: ...

    def pending_blocked_by(self, tenant: str, hold_id: str) -> list[PendingErasure]: ...

    def delete_pending(self, tenant: str, record_kind: str, record_id: str, vacancy_id: str | None) -> None: ...


def hold_key(tenant: str, hold_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, HOLDS), hold_id)


def erasure_key(tenant: str, record_kind: str, record_id: str, vacancy_id: str | None) -> dict[str, Any]:
    return key(tenant_key(tenant, ERASURES), f"{record_kind}#{record_id}#{vacancy_id or '-'}")


def _time(value: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(value["S"]) if value else None


def _hold_item(hold: MessageHold) -> dict[str, Any]:
    item: dict[str, Any] = {
        **hold_key(hold.tenant, hold.hold_id),
        "tenant": {"S": hold.tenant},
        "hold_id": {"S": hold.hold_id},
        "subject_kind": {"S": hold.subject_kind.value},
        "subject_id": {"S": hold.subject_id},
        "reason": {"S": hold.reason},
        "owner": {"S": hold.owner},
        "review_at": {"S": clock.isoformat(hold.review_at)},
        "placed_at": {"S": clock.isoformat(hold.placed_at)},
        "placed_by": {"S": hold.placed_by},
        "messages_held": {"N": str(hold.messages_held)},
    }
    if hold.fanout_cursor:
        item["fanout_cursor"] = {"S": hold.fanout_cursor}
    return item


def _hold_from(item: dict[str, Any]) -> MessageHold:
    def s(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    review, placed = _time(item["review_at"]), _time(item["placed_at"])
    assert review is not None and placed is not None
    return MessageHold(
        tenant=item["tenant"]["S"],
        hold_id=item["hold_id"]["S"],
        subject_kind=MessageHoldSubject(item["subject_kind"]["S"]),
        subject_id=item["subject_id"]["S"],
        reason=item["reason"]["S"],
        owner=item["owner"]["S"],
        review_at=review,
        placed_at=placed,
        placed_by=item["placed_by"]["S"],
        released_at=_time(item.get("released_at")),
        released_by=s("released_by"),
        release_reason=s("release_reason"),
        messages_held=int(item.get("messages_held", {}).get("N", "0")),
        fanout_cursor=s("fanout_cursor"),
    )


def _pending_from(item: dict[str, Any]) -> PendingErasure:
    at = _time(item["at"])
    assert at is not None
    return PendingErasure(
        tenant=item["tenant"]["S"],
        record_kind=item["record_kind"]["S"],
        record_id=item["record_id"]["S"],
        person_id=item["person_id"]["S"],
        vacancy_id=item["vacancy_id"]["S"] if "vacancy_id" in item else None,
        purge_event_id=item["purge_event_id"]["S"],
        holds=frozenset(item.get("holds", {}).get("SS", [])),
        messages_held=int(item["messages_held"]["N"]),
        at=at,
    )


def _encode_cursor(last: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": last["sk"]["S"]}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        sk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["sk"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest("cursor is not one this API issued") from None
    if not isinstance(sk, str) or not sk:
        raise BadRequest("cursor is not one this API issued")
    return sk


class DynamoHoldStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table, self._client = table_name, client

    # --- holds ---------------------------------------------------------------------------------------------------

    def get(self, tenant: str, hold_id: str) -> MessageHold | None:
        item = self.client.get_item(TableName=self._table, Key=hold_key(tenant, hold_id), ConsistentRead=True)
        return _hold_from(item["Item"]) if "Item" in item else None

    def create(self, hold: MessageHold) -> None:
        try:
            self.client.put_item(
                TableName=self._table, Item=_hold_item(hold), ConditionExpression="attribute_not_exists(pk)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise HoldExists(hold.hold_id) from None

    def save_release(self, hold: MessageHold) -> bool:
        """Record the release once (the fan-out starts over, to unmark); False when it was already released."""
        assert hold.released_at is not None
        try:
            self.client.update_item(
                TableName=self._table,
                Key=hold_key(hold.tenant, hold.hold_id),
                UpdateExpression="SET released_at = :at, released_by = :by, release_reason = :why REMOVE fanout_cursor",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(released_at)",
                ExpressionAttributeValues={
                    ":at": {"S": clock.isoformat(hold.released_at)},
                    ":by": {"S": str(hold.released_by)},
                    ":why": {"S": str(hold.release_reason)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def save_progress(self, hold: MessageHold) -> None:
        """Where the hold's fan-out is: its count and, while unfinished, its cursor."""
        expression = "SET messages_held = :n" + (
            ", fanout_cursor = :c" if hold.fanout_cursor else " REMOVE fanout_cursor"
        )
        values: dict[str, Any] = {":n": {"N": str(hold.messages_held)}}
        if hold.fanout_cursor:
            values[":c"] = {"S": hold.fanout_cursor}
        self.client.update_item(
            TableName=self._table,
            Key=hold_key(hold.tenant, hold.hold_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=values,
        )

    def page(
        self, tenant: str, *, active_only: bool, limit: int, cursor: str | None
    ) -> tuple[list[MessageHold], str | None]:
        """Up to `limit` holds of the tenant in hold-id order, from after `cursor`; the next cursor or None."""
        pk = tenant_key(tenant, HOLDS)
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        if active_only:
            request["FilterExpression"] = "attribute_not_exists(released_at)"
        if cursor:
            request["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": _decode_cursor(cursor)}}
        found: list[MessageHold] = []
        while True:
            # The filter applies after the limit: read on until the page is full or the partition ends.
            response = self.client.query(**request, Limit=limit - len(found))
            found.extend(_hold_from(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                return found, None
            if len(found) >= limit:
                return found, _encode_cursor(last)
            request["ExclusiveStartKey"] = last

    def active(self, tenant: str) -> list[MessageHold]:
        """Every active hold of the tenant: one Query (more pages only past 1 MB of holds)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "attribute_not_exists(released_at)",
            "ExpressionAttributeValues": {":pk": {"S": tenant_key(tenant, HOLDS)}},
            "ConsistentRead": True,
        }
        found: list[MessageHold] = []
        while True:
            response = self.client.query(**request)
            found.extend(_hold_from(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- marks on messages -----------------------------------------------------------------------------------

    def mark(self, tenant: str, message_ids: Iterable[str], hold_id: str, *, add: bool) -> int:
        """Add (or delete) `hold_id` in the `holds` set of each existing message, moving its version on; the
        number of messages written."""
        expression = "ADD #holds :h, #version :one" if add else "DELETE #holds :h ADD #version :one"
        written = 0
        for message_id in message_ids:
            try:
                self.client.update_item(
                    TableName=self._table,
                    Key=message_key(tenant, message_id),
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#holds": "holds", "#version": "version"},
                    ExpressionAttributeValues={":h": {"SS": [hold_id]}, ":one": {"N": "1"}},
                )
                written += 1
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
        return written

    # --- erasures kept by holds ------------------------------------------------------------------------------

    def put_pending(self, pending: PendingErasure) -> None:
        item: dict[str, Any] = {
            **erasure_key(pending.tenant, pending.record_kind, pending.record_id, pending.vacancy_id),
            "tenant": {"S": pending.tenant},
            "record_kind": {"S": pending.record_kind},
            "record_id": {"S": pending.record_id},
            "person_id": {"S": pending.person_id},
            "purge_event_id": {"S": pending.purge_event_id},
            "messages_held": {"N": str(pending.messages_held)},
            "at": {"S": clock.isoformat(pending.at)},
        }
        if pending.vacancy_id:
            item["vacancy_id"] = {"S": pending.vacancy_id}
        if pending.holds:
            item["holds"] = {"SS": sorted(pending.holds)}
        self.client.put_item(TableName=self._table, Item=item)

    def pending_blocked_by(self, tenant: str, hold_id: str) -> list[PendingErasure]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "FilterExpression": "contains(#holds, :h)",
            "ExpressionAttributeNames": {"#holds": "holds"},
            "ExpressionAttributeValues": {":pk": {"S": tenant_key(tenant, ERASURES)}, ":h": {"S": hold_id}},
            "ConsistentRead": True,
        }
        found: list[PendingErasure] = []
        while True:
            response = self.client.query(**request)
            found.extend(_pending_from(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def delete_pending(self, tenant: str, record_kind: str, record_id: str, vacancy_id: str | None) -> None:
        self.client.delete_item(TableName=self._table, Key=erasure_key(tenant, record_kind, record_id, vacancy_id))
