"""Messages in DynamoDB (layout: functions/messages/dal/items.py): a port and its adapter.

Ingest reads every message a batch names with BatchGetItem (reads, 100 keys a request) and writes each changed
message ONCE, a PutItem conditional on the version it read: deduplication is the message's own history (the
provider's event ids), so no idempotency record costs a second write per event. A concurrent writer's change is
a `StaleWrite`; the consumer reads again and applies again. Throttling is retried by botocore (standard mode);
what still fails leaves the SQS record to be retried later, and nothing is lost.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from functions.messages.dal.items import INDEXES, at_of, from_item, key, message_key, term_pk, to_item
from functions.messages.models.message import MessageState
from shared.aws import LazyClient
from shared.errors import BadRequest, DependencyFailure
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_GET_LIMIT = 100
_BATCH_WRITE_LIMIT = 25
_UNPROCESSED_ATTEMPTS = 6


class StaleWrite(Exception):
    """The message changed between the read and the conditional write: read it again and apply again."""


@dataclass(frozen=True)
class IndexQuery:
    """One key condition: the index, its partition value and an optional `at` range (ISO times, inclusive)."""

    index: str
    partition: str
    since: str | None = None
    until: str | None = None
    newest_first: bool = True


@dataclass(frozen=True)
class Page:
    messages: list[MessageState]
    cursor: str | None
    items_read: int


class MessageStore(Protocol):
    def load(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], MessageState]: ...

    def save(self, state: MessageState) -> MessageState: ...

    def get(self, tenant: str, message_id: str) -> MessageState | None: ...

    def put_terms(self, state: MessageState, digests: Sequence[str]) -> None: ...

    def query(
        self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]
    ) -> Page: ...


class DynamoMessageStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table, self._client = table_name, client

    def load(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], MessageState]:
        """The stored messages among `keys` ((tenant, message id) pairs), by key: one BatchGetItem per 100."""
        found: dict[tuple[str, str], MessageState] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH_GET_LIMIT):
            chunk = unique[start : start + _BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                self._table: {"Keys": [message_key(t, m) for t, m in chunk], "ConsistentRead": True}
            }
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    state = from_item(item)
                    found[(state.tenant, state.message_id)] = state
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise DependencyFailure("DynamoDB left message keys unprocessed after every retry")
        return found

    def save(self, state: MessageState) -> MessageState:
        """Write the whole message, if nobody else did since it was read (`state.version`); the stored copy, with
        its new version, is returned."""
        from dataclasses import replace

        stored = replace(state, version=state.version + 1)
        condition: dict[str, Any]
        if state.version == 0:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": {":read": {"N": str(state.version)}},
            }
        try:
            self.client.put_item(TableName=self._table, Item=to_item(stored), **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleWrite(state.message_id) from None
        return stored

    def get(self, tenant: str, message_id: str) -> MessageState | None:
        item = self.client.get_item(TableName=self._table, Key=message_key(tenant, message_id), ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def put_terms(self, state: MessageState, digests: Sequence[str]) -> None:
        """One search-term item per distinct digest of the message's content: BatchWriteItem, 25 a request."""
        at = at_of(state)
        puts = [
            {
                "PutRequest": {
                    "Item": {
                        **key(term_pk(state.tenant, digest), at),
                        "message_id": {"S": state.message_id},
                        "tenant": {"S": state.tenant},
                    }
                }
            }
            for digest in dict.fromkeys(digests)
        ]
        for start in range(0, len(puts), _BATCH_WRITE_LIMIT):
            request: dict[str, Any] = {self._table: puts[start : start + _BATCH_WRITE_LIMIT]}
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
            else:
                raise DependencyFailure("DynamoDB left search terms unwritten after every retry")

    def query(self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]) -> Page:
        """One page of messages from one index, newest first; `filters` (attribute -> value) narrows it further
        when a search names more than the index's own filter."""
        if query.index not in INDEXES:
            raise ValueError(f"unknown index {query.index}")
        partition_attr, _ = INDEXES[query.index]
        condition = "#p = :p"
        values: dict[str, Any] = {":p": {"S": query.partition}}
        names = {"#p": partition_attr}
        if query.since or query.until:
            names["#at"] = "at"
        if query.since and query.until:
            condition += " AND #at BETWEEN :since AND :until"
            values[":since"], values[":until"] = {"S": query.since}, {"S": query.until + "\uffff"}
        elif query.since:
            condition += " AND #at >= :since"
            values[":since"] = {"S": query.since}
        elif query.until:
            condition += " AND #at <= :until"
            values[":until"] = {"S": query.until + "\uffff"}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": query.index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not query.newest_first,
            "Limit": limit,
        }
        if filters:
            parts = []
            for i, (attr, value) in enumerate(sorted(filters.items())):
                names[f"#f{i}"] = attr
                values[f":f{i}"] = {"S": value}
                parts.append(f"#f{i} = :f{i}")
            request["FilterExpression"] = " AND ".join(parts)
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, tenant, query)
        response = self.client.query(**request)
        last = response.get("LastEvaluatedKey")
        return Page(
            messages=[from_item(item) for item in response.get("Items", [])],
            cursor=encode_cursor(last) if last else None,
            items_read=int(response.get("ScannedCount", 0)),
        )

    def term_page(
        self,
        tenant: str,
        digests: Sequence[str],
        *,
        since: str | None,
        until: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[tuple[str, str]], str | None, int]:
        """(message id, at) of the newest messages holding a term, under any of its digests (one per key
        version), before the cursor; the next cursor; the items read."""
        upper = _text_cursor(cursor) if cursor else (until + "\uffff" if until else None)
        hits: list[tuple[str, str]] = []
        more = False
        read = 0
        for digest in dict.fromkeys(digests):
            condition, values = "pk = :pk", {":pk": {"S": term_pk(tenant, digest)}}
            if since and upper:
                condition += " AND sk BETWEEN :lo AND :hi"
                values[":lo"], values[":hi"] = {"S": since}, {"S": upper}
            elif since:
                condition += " AND sk >= :lo"
                values[":lo"] = {"S": since}
            elif upper:
                condition += " AND sk <= :hi"
                values[":hi"] = {"S": upper}
            response = self.client.query(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1,
                ProjectionExpression="sk, message_id",
            )
            read += int(response.get("ScannedCount", 0))
            more |= "LastEvaluatedKey" in response
            hits.extend((item["message_id"]["S"], item["sk"]["S"]) for item in response.get("Items", []))
        if cursor:
            hits = [h for h in hits if h[1] != _text_cursor(cursor)]
        hits = sorted(dict.fromkeys(hits), key=lambda h: h[1], reverse=True)
        more |= len(hits) > limit
        hits = hits[:limit]
        next_cursor = _text_cursor_of(hits[-1][1]) if more and hits else None
        return hits, next_cursor, read

    def has_terms(self, tenant: str, wanted: Sequence[tuple[Sequence[str], str]]) -> set[str]:
        """The message ids among `wanted` ((digests of one term, the message's `at`)) whose content holds the term:
        point reads of the term items, 100 keys a request."""
        keys = [key(term_pk(tenant, digest), at) for digests, at in wanted for digest in dict.fromkeys(digests)]
        found: set[str] = set()
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + _BATCH_GET_LIMIT], "ProjectionExpression": "message_id"}
            }
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = self.client.batch_get_item(RequestItems=request)
                found.update(item["message_id"]["S"] for item in response.get("Responses", {}).get(self._table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise DependencyFailure("DynamoDB left term keys unprocessed after every retry")
        return found


def encode_cursor(last: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in last.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, tenant: str, query: IndexQuery) -> dict[str, Any]:
    """The start key a cursor names, refused unless it is one of `tenant`'s keys of this very query."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this search returned") from None
    partition_attr, _ = INDEXES[query.index]
    expected = {"pk", "sk", partition_attr, "at"}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) for v in plain.values())
        or plain[partition_attr] != query.partition
        or not str(plain["pk"]).startswith(tenant_key(tenant, "MSG") + "#")
    ):
        raise BadRequest("cursor is not one this search returned")
    return {name: {"S": value} for name, value in plain.items()}


def _text_cursor_of(at: str) -> str:
    return "t." + base64.urlsafe_b64encode(at.encode()).decode().rstrip("=")


def _text_cursor(cursor: str) -> str:
    """The `at` a text-search cursor continues before."""
    if not cursor.startswith("t."):
        raise BadRequest("cursor is not one this search returned")
    try:
        padded = cursor[2:] + "=" * (-len(cursor[2:]) % 4)
        at = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this search returned") from None
    if "#" not in at or len(at) > 200:
        raise BadRequest("cursor is not one this search returned")
    return at
