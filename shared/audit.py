"""The audit-append port and its DynamoDB adapter: a hash chain per tenant.

Each entry stores the SHA-256 of (previous hash + canonical JSON of the entry). The chain head holds the
last sequence number and hash; appends are a transaction conditioned on the head, so concurrent writers
cannot fork the chain. A changed entry breaks its hash, a deleted one leaves a gap in the sequence or a
head that points past the last entry: `verify` reports either.

Appends are idempotent: the same fact (request id, actor, action, resource, outcome) appended twice, as a
retried Lambda invocation does, is recorded once. The transaction also writes a marker keyed by that fact; when
the marker exists, the append returns the record already in the chain.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, Field

from shared import clock
from shared.aws import LazyClient
from shared.errors import DependencyFailure
from shared.keys import check_tenant, sequence_key, tenant_key
from shared.models import Model

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

GENESIS = "0" * 64
_MAX_ATTEMPTS = 8
# Contention on one chain's head (a burst of refusals on `_gateway`): back off with full jitter between attempts.
_BACKOFF_BASE_SECONDS = 0.01
_BACKOFF_CAP_SECONDS = 0.25
_ABSENT = "attribute_not_exists(pk)"  # the item must not exist yet


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


class AuditEntry(Model):
    """Who did what to which resource, when, with what outcome, under which request."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    actor: str = Field(min_length=1, max_length=256)
    action: str = Field(min_length=1, max_length=128)
    resource: str = Field(min_length=1, max_length=512)
    outcome: Outcome
    request_id: str = Field(min_length=1, max_length=128)
    reason: str | None = Field(default=None, max_length=512)
    source_ip: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=clock.now)


class AuditRecord(AuditEntry):
    seq: int
    prev_hash: str
    hash: str


class ChainVerification(Model):
    tenant: str
    entries: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> AuditRecord: ...


def fact_key(entry: AuditEntry) -> str:
    """The sort key of the marker that makes appending `entry` idempotent (its time is left out: a retry's
    entry carries a later one)."""
    fact = "\x1f".join((entry.request_id, entry.actor, entry.action, entry.resource, entry.outcome.value))
    return "FACT#" + hashlib.sha256(fact.encode()).hexdigest()[:40]


def entry_hash(prev_hash: str, seq: int, entry: AuditEntry) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the entry with its sequence number."""
    body = entry.model_dump(mode="json")
    body["seq"] = seq
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


class DynamoAuditLog:
    """AuditLog on a DynamoDB table with string keys `pk` and `sk`."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Chain `entry` onto its tenant's log; a fact already recorded is returned as it was recorded."""
        check_tenant(entry.tenant)
        pk = tenant_key(entry.tenant, "AUDIT")
        marker = fact_key(entry)
        for attempt in range(_MAX_ATTEMPTS):
            head = self.client.get_item(
                TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": "HEAD"}}, ConsistentRead=True
            ).get("Item")
            last_seq = int(head["seq"]["N"]) if head else 0
            prev = head["hash"]["S"] if head else GENESIS
            seq = last_seq + 1
            digest = entry_hash(prev, seq, entry)
            record = AuditRecord(**entry.model_dump(), seq=seq, prev_hash=prev, hash=digest)
            head_condition: Any = (
                {"ConditionExpression": "seq = :last", "ExpressionAttributeValues": {":last": {"N": str(last_seq)}}}
                if head
                else {"ConditionExpression": _ABSENT}
            )
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": _to_item(pk, record),
                                "ConditionExpression": _ABSENT,
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {
                                    "pk": {"S": pk},
                                    "sk": {"S": "HEAD"},
                                    "seq": {"N": str(seq)},
                                    "hash": {"S": digest},
                                },
                                **head_condition,
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {"pk": {"S": pk}, "sk": {"S": marker}, "seq": {"N": str(seq)}},
                                "ConditionExpression": _ABSENT,
                            }
                        },
                    ]
                )
                return record
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons") or []
                if len(reasons) == 3 and reasons[2].get("Code") == "ConditionalCheckFailed":
                    recorded = self._recorded(pk, marker)
                    if recorded is not None:
                        return recorded
                # Another writer appended first: wait a little (full jitter, growing), re-read the head, chain on.
                time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)))
        raise DependencyFailure(f"could not append to the audit chain of {entry.tenant} after {_MAX_ATTEMPTS} tries")

    def _recorded(self, pk: str, marker: str) -> AuditRecord | None:
        """The record a fact marker points to."""
        found = self.client.get_item(
            TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": marker}}, ConsistentRead=True
        ).get("Item")
        if not found:
            return None
        item = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": sequence_key("SEQ", int(found["seq"]["N"]))}},
            ConsistentRead=True,
        ).get("Item")
        return _from_item(item) if item else None

    def entries(self, tenant: str, *, after_seq: int = 0, limit: int = 100) -> list[AuditRecord]:
        """Up to `limit` records of `tenant` with a sequence number above `after_seq`, oldest first."""
        pk = tenant_key(tenant, "AUDIT")
        out: list[AuditRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":lo": {"S": sequence_key("SEQ", after_seq + 1)},
                ":hi": {"S": sequence_key("SEQ", 10**12 - 1)},
            },
            "ConsistentRead": True,
        }
        while len(out) < limit:
            page = self.client.query(**kwargs, Limit=limit - len(out))
            out.extend(_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out

    def verify(self, tenant: str, *, page_size: int = 500) -> ChainVerification:
        """Recompute the chain of `tenant` from the first entry to the head."""
        prev, expected, count = GENESIS, 1, 0
        while True:
            batch = self.entries(tenant, after_seq=expected - 1, limit=page_size)
            for record in batch:
                if record.seq != expected:
                    return ChainVerification(
                        tenant=tenant, entries=count, ok=False, broken_at=expected, problem="entry missing"
                    )
                base = AuditEntry(**record.model_dump(include=set(AuditEntry.model_fields)))
                if record.prev_hash != prev or entry_hash(prev, record.seq, base) != record.hash:
                    return ChainVerification(
                        tenant=tenant, entries=count, ok=False, broken_at=record.seq, problem="entry altered"
                    )
                prev, expected, count = record.hash, expected + 1, count + 1
            if len(batch) < page_size:
                break
        head = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": tenant_key(tenant, "AUDIT")}, "sk": {"S": "HEAD"}},
            ConsistentRead=True,
        ).get("Item")
        head_seq = int(head["seq"]["N"]) if head else 0
        if head_seq != count or (head and head["hash"]["S"] != prev):
            return ChainVerification(
                tenant=tenant, entries=count, ok=False, broken_at=count + 1, problem="entries missing at the end"
            )
        return ChainVerification(tenant=tenant, entries=count, ok=True)


def _to_item(pk: str, record: AuditRecord) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sequence_key("SEQ", record.seq)}}
    for name, value in record.model_dump(mode="json").items():
        if value is None:
            continue
        item[name] = {"N": str(value)} if name == "seq" else {"S": str(value)}
    return item


def _from_item(item: dict[str, Any]) -> AuditRecord:
    fields = {k: (v["N"] if "N" in v else v["S"]) for k, v in item.items() if k not in ("pk", "sk")}
    return AuditRecord.model_validate(fields)
