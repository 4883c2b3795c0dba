"""Deleting a message's search terms (layout: functions/messages/dal/items.py, `T#<t>#TERM#<digest>` / `<at>`).

A term item's sort key is the message's `at` (`<first event time>#<message id>`) when its content was written.
The first event time can move earlier afterwards (an event that happened first may arrive last), and the term
items are not rewritten then, so the `at` they were written under is one of the message's event times, not
always its current one. The caller names every `at` that can be; this reads which of those keys exist (100 keys a
BatchGetItem, a read costing half a write) and deletes only those (25 a BatchWriteItem).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from functions.messages.dal.items import key, term_pk
from shared.aws import LazyClient
from shared.errors import DependencyFailure

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_BATCH_GET_LIMIT = 100
_BATCH_WRITE_LIMIT = 25
_UNPROCESSED_ATTEMPTS = 6


class TermRemover(Protocol):
    def delete_terms(self, tenant: str, message_id: str, digests: Sequence[str], ats: Sequence[str]) -> int: ...


class DynamoTermStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table, self._client = table_name, client

    def delete_terms(self, tenant: str, message_id: str, digests: Sequence[str], ats: Sequence[str]) -> int:
        """Delete the term items of `message_id` under any of `digests` and `ats`; the number deleted."""
        keys = [key(term_pk(tenant, digest), at) for digest in dict.fromkeys(digests) for at in dict.fromkeys(ats)]
        found = self._existing(keys, message_id)
        deletes = [{"DeleteRequest": {"Key": item_key}} for item_key in found]
        for start in range(0, len(deletes), _BATCH_WRITE_LIMIT):
            request: dict[str, Any] = {self._table: deletes[start : start + _BATCH_WRITE_LIMIT]}
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = self.client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
            else:
                raise DependencyFailure("DynamoDB left search terms undeleted after every retry")
        return len(found)

    def _existing(self, keys: list[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys[start : start + _BATCH_GET_LIMIT],
                    "ProjectionExpression": "pk, sk, message_id",
                    "ConsistentRead": True,
                }
            }
            for _ in range(_UNPROCESSED_ATTEMPTS):
                response = self.client.batch_get_item(RequestItems=request)
                found.extend(
                    {"pk": item["pk"], "sk": item["sk"]}
                    for item in response.get("Responses", {}).get(self._table, [])
                    if item.get("message_id", {}).get("S") == message_id
                )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise DependencyFailure("DynamoDB left term keys unprocessed after every retry")
        return found
