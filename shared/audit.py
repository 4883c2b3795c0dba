"""The audit-append port and its DynamoDB adapter: the request path only ever INSERTS.

A request (or an invocation) writes what it audited as ONE new item, with one conditional PutItem and no read:

    Inbox item   pk T#<tenant>#AUDITIN#<shard>   sk E#<fingerprint>   entries (JSON list), count, written_at

The shard (0..INBOX_SHARDS-1) comes from the fingerprint, so one tenant's, or the gateway's, writes spread over
several partitions; the fingerprint is the SHA-256 of the entries without their times, so the same facts written
again by a retried invocation land on the same key and the condition refuses them: a retry is recorded once.
Nothing on the request path reads the trail, updates an item or deletes one, and IAM grants it nothing more than
PutItem on `T#*#AUDITIN#*` keys (infra/constructs/domain.py). A single writer off the request path, the audit
domain's linker (functions/audit/), reads the inserts from the table's stream and links every entry into a
per-tenant, per-shard hash chain in the proof format of `shared.audit_proof`; hourly signed digests anchor it.

Batching: inside `batched()` (the API resolver opens one per request: shared/http.py) `append` only collects, and
the scope's end writes everything collected in one PutItem per tenant. Outside a scope, `append` writes at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ConfigDict, Field

from shared import clock
from shared.aws import LazyClient
from shared.errors import DependencyFailure
from shared.keys import check_tenant, tenant_key
from shared.models import Model

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FORMAT_VERSION = 2
INBOX = "AUDITIN"
INBOX_SHARDS = 8
MAX_ENTRIES_PER_ITEM = 90  # the linker links an item in one transaction (100 actions at most)
_ABSENT = "attribute_not_exists(pk)"  # the item must not exist yet


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    FAILED = "failed"


class AuditEntry(Model):
    """Who did what to which resource, when, with what outcome, under which request. Identifiers only: an entry
    never holds personal data, so erasure never has to touch the trail."""

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


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> None: ...


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The entry as the proof format records it (shared/audit_proof.py): version 2, absent fields left out, the
    time as ISO 8601 UTC with microseconds. The linker adds `shard` and `seq`."""
    from shared.audit_proof import format_instant

    fields: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "tenant": entry.tenant,
        "at": format_instant(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "resource": entry.resource,
        "outcome": entry.outcome.value,
        "request_id": entry.request_id,
    }
    if entry.reason is not None:
        fields["reason"] = entry.reason
    if entry.source_ip is not None:
        fields["source_ip"] = entry.source_ip
    return fields


def entry_from_fields(fields: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        tenant=fields["tenant"],
        actor=fields["actor"],
        action=fields["action"],
        resource=fields["resource"],
        outcome=Outcome(fields["outcome"]),
        request_id=fields["request_id"],
        reason=fields.get("reason"),
        source_ip=fields.get("source_ip"),
        at=datetime.fromisoformat(fields["at"].replace("Z", "+00:00")),
    )


def fingerprint(entries: Sequence[AuditEntry]) -> str:
    """The facts of `entries` (who did what to which resource, with what outcome, under which request) without
    their times and reasons: what a retried invocation records again, even when its reason reads differently (a
    second erasure finds nothing left to erase)."""
    facts = [[e.tenant, e.actor, e.action, e.resource, e.outcome.value, e.request_id] for e in entries]
    return hashlib.sha256(json.dumps(facts, separators=(",", ":")).encode()).hexdigest()[:40]


def inbox_item(tenant: str, entries: Sequence[AuditEntry], written_at: datetime) -> dict[str, Any]:
    """The one item a request writes for `tenant` (DynamoDB JSON)."""
    mark = fingerprint(entries)
    shard = int(mark[:8], 16) % INBOX_SHARDS
    return {
        "pk": {"S": tenant_key(tenant, INBOX, str(shard))},
        "sk": {"S": f"E#{mark}"},
        "v": {"N": str(FORMAT_VERSION)},
        "tenant": {"S": tenant},
        "entries": {"S": json.dumps([entry_fields(e) for e in entries], separators=(",", ":"), ensure_ascii=False)},
        "count": {"N": str(len(entries))},
        "written_at": {"S": clock.isoformat(written_at)},
        # The host's own clock, in nanoseconds: orders the items a test's frozen service clock writes at one time.
        "written_ns": {"N": str(time.time_ns())},
    }


def entries_of_item(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries an inbox item holds, as `entry_fields` wrote them."""
    loaded: list[dict[str, Any]] = json.loads(item["entries"]["S"])
    return loaded


_PENDING: ContextVar[list[tuple[DynamoAuditLog, AuditEntry]] | None] = ContextVar("audit_pending", default=None)
# Entries appended in the open scope through any AuditLog (an adapter, or a test's fake): see `note_append`.
_APPENDED: ContextVar[list[int] | None] = ContextVar("audit_appended", default=None)


@contextmanager
def batched() -> Iterator[None]:
    """Collect every `DynamoAuditLog.append` made inside the block and write them when it ends, one PutItem per
    audit table and tenant. A failed write raises DependencyFailure (the caller decides what the request answers);
    what was collected is written even when the block raised."""
    token, counted = _PENDING.set([]), _APPENDED.set([0])
    try:
        yield
    finally:
        pending = _PENDING.get() or []
        _PENDING.reset(token)
        _APPENDED.reset(counted)
        flush(pending)


def note_append() -> None:
    """Count one entry appended in the open `batched()` scope. Every `AuditLog` calls it from `append`, so the API
    resolver knows whether a request audited anything (shared/http.py `audit_unaudited`)."""
    appended = _APPENDED.get()
    if appended is not None:
        appended[0] += 1


def collected() -> int:
    """How many entries were appended in the open `batched()` scope (0 outside one)."""
    appended = _APPENDED.get()
    return appended[0] if appended is not None else 0


def flush(pending: Sequence[tuple[DynamoAuditLog, AuditEntry]]) -> None:
    groups: dict[tuple[int, str], tuple[DynamoAuditLog, list[AuditEntry]]] = {}
    for log, entry in pending:
        groups.setdefault((id(log), entry.tenant), (log, []))[1].append(entry)
    # Logs for the same table written together: one item per (table, tenant).
    by_table: dict[tuple[str, str], tuple[DynamoAuditLog, list[AuditEntry]]] = {}
    for (_, tenant), (log, entries) in groups.items():
        by_table.setdefault((log.table_name, tenant), (log, []))[1].extend(entries)
    for (_, tenant), (log, entries) in by_table.items():
        log.write(tenant, entries)


class DynamoAuditLog:
    """AuditLog on a DynamoDB table with string keys `pk` and `sk`: inserts only."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def append(self, entry: AuditEntry) -> None:
        """Record `entry`: collected when a `batched()` scope is open, written at once otherwise."""
        check_tenant(entry.tenant)
        note_append()
        pending = _PENDING.get()
        if pending is not None:
            pending.append((self, entry))
            return
        self.write(entry.tenant, [entry])

    def write(self, tenant: str, entries: Sequence[AuditEntry]) -> None:
        """One conditional PutItem of a new inbox item holding `entries`; the same facts already recorded (a retry)
        are left as they are."""
        check_tenant(tenant)
        for start in range(0, len(entries), MAX_ENTRIES_PER_ITEM):  # one item, unless a batch is very large
            self._put(tenant, entries[start : start + MAX_ENTRIES_PER_ITEM])

    def _put(self, tenant: str, entries: Sequence[AuditEntry]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=inbox_item(tenant, entries, clock.now()),
                ConditionExpression=_ABSENT,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return  # recorded by an earlier attempt of the same invocation
        except (BotoCoreError, ClientError) as failed:
            raise DependencyFailure("the audit trail could not be written") from failed

    def entries(self, tenant: str, *, limit: int = 1000) -> list[AuditEntry]:
        """Up to `limit` entries of `tenant` as the request path wrote them (every inbox shard), oldest first: for
        tests and operators; the linked chain is read by the audit domain (functions/audit/dal)."""
        found: list[tuple[int, int, AuditEntry]] = []
        for shard in range(INBOX_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": tenant_key(tenant, INBOX, str(shard))}},
                "ConsistentRead": True,
            }
            while True:
                page = self.client.query(**kwargs)
                for item in page.get("Items", []):
                    written = int(item.get("written_ns", {}).get("N", "0"))
                    found.extend(
                        (written, index, entry_from_fields(f)) for index, f in enumerate(entries_of_item(item))
                    )
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found.sort(key=lambda e: (e[2].at, e[0], e[1]))
        return [entry for _, _, entry in found[:limit]]
