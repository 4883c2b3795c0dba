"""The warm and cold tiers of messages (functions/messages/logic/tiers.py): their objects in the archive bucket, an
archived message read back whole, and the messages table's side of the daily tiering (the due messages on the
ByTime index, a stub's deletion).

    Archive object   messages/<tenant>/<yyyy>/<mm>/<message id>.json   (year and month of the first event, UTC)

An archived message is two parts. Its DynamoDB item is a stub: every fact, index attribute and history entry (so
every metadata search finds it, and reports and deduplication read its history), `tier` and `archive_key`, and no
content. Its object is the whole item as it was in DynamoDB (its DynamoDB JSON: sealed content as sealed, never
opened), wrapped with its format and the time it was archived. A message without content has no object: it would
hold nothing the stub does not. `merged` puts the two together (`ArchivedMessages` is the MessageStore that does it
on every read, and keeps the object in step on a save).

Every put sends the SHA-256 of the body (S3 checks it and keeps it, and every read checks it back: `ChecksumMode`);
the storage class says the tier (Standard-IA warm, Glacier Instant Retrieval cold: both read back in milliseconds).
The bucket is versioned, so one message's object can pile up versions (a copy to another class, a rewrite after a
redaction, an attempt repeated): a put or a copy removes the versions older than its own, and a deletion removes
every version and delete marker of the key, which is what takes the data away for good. Encryption is the bucket's
default (SSE-KMS, the data key).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from functions.messages.dal.items import INDEXES, from_item, message_key, to_item
from functions.messages.dal.messages import IndexQuery, MessageStore, Page
from functions.messages.models.message import MessageState
from functions.messages.models.policy import Tier
from shared import clock
from shared.aws import LazyClient
from shared.errors import DependencyFailure
from shared.keys import check_tenant, tenant_key
from shared.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

ARCHIVE_PREFIX = "messages/"
FORMAT = "ats-message-archive/1"
_DELETE_BATCH = 1000  # DeleteObjects' limit
_BY_TIME = "ByTime"
STORAGE_CLASS = {Tier.WARM: "STANDARD_IA", Tier.COLD: "GLACIER_IR"}


def archive_key_for(state: MessageState) -> str:
    """Where a message's archive object goes: by tenant, then the year and month of its first event."""
    check_tenant(state.tenant)
    if not state.message_id or "/" in state.message_id:
        raise ValueError("a message id has no `/`")
    first = state.first_at.astimezone(UTC)
    return f"{ARCHIVE_PREFIX}{state.tenant}/{first:%Y}/{first:%m}/{state.message_id}.json"


def _body(state: MessageState) -> bytes:
    document = {
        "format": FORMAT,
        "archived_at": clock.isoformat(clock.now()),
        "tenant": state.tenant,
        "message_id": state.message_id,
        "item": to_item(state),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _error_code(error: Exception) -> str:
    response: dict[str, Any] = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


class MessageArchive(Protocol):
    """The archive bucket's message objects (`S3MessageArchive`)."""

    def put(self, key: str, state: MessageState, storage_class: str) -> None: ...

    def read(self, key: str) -> MessageState | None: ...

    def storage_class(self, key: str) -> str | None: ...

    def change_class(self, key: str, storage_class: str) -> None: ...

    def delete(self, key: str) -> int: ...


class S3MessageArchive:
    """The archive bucket's `messages/` objects."""

    client: LazyClient[S3Client] = LazyClient("s3")

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._client = client

    def put(self, key: str, state: MessageState, storage_class: str) -> None:
        """Write the whole message at `key` in `storage_class`, then remove the key's older versions."""
        body = _body(state)
        answer = self.client.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            StorageClass=storage_class,  # type: ignore[arg-type]
            ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        )
        self._drop_older(key, answer.get("VersionId"))

    def read(self, key: str) -> MessageState | None:
        """The archived message at `key` (its checksum checked); None when there is no object."""
        try:
            answer = self.client.get_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except self.client.exceptions.NoSuchKey:
            return None
        document = json.loads(answer["Body"].read())
        if document.get("format") != FORMAT:
            raise DependencyFailure(f"archive object {key} is not in the format {FORMAT}")
        return from_item(document["item"])

    def storage_class(self, key: str) -> str | None:
        """The object's storage class (S3 names none for STANDARD); None when there is no object."""
        try:
            head = self.client.head_object(Bucket=self._bucket, Key=key)
        except self.client.exceptions.ClientError as error:
            if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return str(head.get("StorageClass") or "STANDARD")

    def change_class(self, key: str, storage_class: str) -> None:
        """Copy the object onto itself in `storage_class` (a new version, its checksum computed again), then remove
        the older versions, which would otherwise be billed in their old class."""
        answer = self.client.copy_object(
            Bucket=self._bucket,
            Key=key,
            CopySource={"Bucket": self._bucket, "Key": key},
            StorageClass=storage_class,  # type: ignore[arg-type]
            MetadataDirective="COPY",
            ChecksumAlgorithm="SHA256",
        )
        self._drop_older(key, answer.get("VersionId"))

    def delete(self, key: str) -> int:
        """Delete every version and delete marker of `key`; how many."""
        return self._delete_versions(key, keep_from=None)

    def _drop_older(self, key: str, version_id: str | None) -> None:
        if version_id and version_id != "null":  # "null": the bucket is not versioned, and nothing piles up
            self._delete_versions(key, keep_from=version_id)

    def _delete_versions(self, key: str, *, keep_from: str | None) -> int:
        """Delete the versions of exactly `key`: all of them, or (`keep_from`) those older than that version, and its
        delete markers. S3 lists a key's versions newest first, so a concurrent writer's newer version is never
        among those deleted; when `keep_from` is not listed (deleted meanwhile), nothing is."""
        targets: list[dict[str, str]] = []
        kept = keep_from is None
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": key}
        while True:
            page = self.client.list_object_versions(**request)
            for version in page.get("Versions", []):
                if version["Key"] != key:
                    continue
                if not kept:
                    kept = version["VersionId"] == keep_from
                    continue
                targets.append({"Key": key, "VersionId": version["VersionId"]})
            targets.extend(
                {"Key": key, "VersionId": marker["VersionId"]}
                for marker in page.get("DeleteMarkers", [])
                if marker["Key"] == key
            )
            if not page.get("IsTruncated"):
                break
            request["KeyMarker"] = page["NextKeyMarker"]
            request["VersionIdMarker"] = page["NextVersionIdMarker"]
        if not kept:
            return 0
        for start in range(0, len(targets), _DELETE_BATCH):
            chunk = targets[start : start + _DELETE_BATCH]
            answer = self.client.delete_objects(Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True})  # type: ignore[typeddict-item]
            if answer.get("Errors"):
                codes = sorted({str(e.get("Code")) for e in answer["Errors"]})
                raise DependencyFailure(f"could not delete {len(answer['Errors'])} archive version(s): {codes}")
        return len(targets)


# --- stubs and whole messages -------------------------------------------------------------------------------------


def has_content(state: MessageState) -> bool:
    return bool(state.sealed_subject or state.sealed_body)


def stub_of(state: MessageState, tier: Tier, key: str | None) -> MessageState:
    """The DynamoDB item of an archived message: every fact, index attribute and history entry; no content."""
    return replace(state, tier=tier.value, archive_key=key, sealed_subject=None, sealed_body=None)


def merged(stub: MessageState, archived: MessageState | None) -> MessageState:
    """An archived message whole: the stub's facts (status, holds, redaction, version: the stub is the record of
    truth) with the history of both and the content (the stub's own if an event brought some after it was
    archived, else the archived one; none once redacted)."""
    if archived is None:
        return stub
    by_id = {entry.event_id: entry for entry in archived.history}
    by_id.update({entry.event_id: entry for entry in stub.history})
    history = sorted(by_id.values(), key=lambda e: (e.at, e.status.rank, e.event_id))
    source = stub if has_content(stub) else archived
    keep = stub.redacted_at is None
    return replace(
        stub,
        history=history,
        sealed_subject=source.sealed_subject if keep else None,
        sealed_body=source.sealed_body if keep else None,
    )


def for_archive(whole: MessageState) -> MessageState:
    """What the archive object holds: the message as a hot item would (the tier is the object's storage class)."""
    return replace(whole, tier=None, archive_key=None)


class ArchivedMessages:
    """A MessageStore that reads archived messages back whole (`merged` with their archive object) and, saving one,
    rewrites its archive object from the saved message before the stub: so a redaction or an erasure that saves a
    message without content removes the content from the archive too. Hot messages pass straight through.

    `whole_in_queries`: index pages too are read back whole (one object read per archived message: for the use
    cases that act on each message of a page, an erasure; a search lists stubs)."""

    def __init__(self, store: MessageStore, archive: MessageArchive, *, whole_in_queries: bool = False) -> None:
        self._store, self._archive, self._queries = store, archive, whole_in_queries

    def _whole(self, state: MessageState) -> MessageState:
        if state.tier is None or not state.archive_key:
            return state
        archived = self._archive.read(state.archive_key)
        if archived is None:
            logger.error("archived message has no archive object", extra={"message_id": state.message_id})
        return merged(state, archived)

    def get(self, tenant: str, message_id: str) -> MessageState | None:
        found = self._store.get(tenant, message_id)
        return self._whole(found) if found is not None else None

    def load(self, keys: Any) -> dict[tuple[str, str], MessageState]:
        return {k: self._whole(v) for k, v in self._store.load(keys).items()}

    def query(self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]) -> Page:
        page = self._store.query(tenant, query, limit=limit, cursor=cursor, filters=filters)
        if not self._queries:
            return page
        return Page([self._whole(m) for m in page.messages], page.cursor, page.items_read)

    def put_terms(self, state: MessageState, digests: Any) -> None:
        self._store.put_terms(state, digests)

    def save(self, state: MessageState) -> MessageState:
        if state.tier is None or not state.archive_key:
            return self._store.save(state)
        tier = Tier(state.tier)
        # Merged with the archived copy again: a caller may hold a stub that was not read back whole.
        whole = merged(state, self._archive.read(state.archive_key))
        self._archive.put(state.archive_key, for_archive(whole), STORAGE_CLASS[tier])
        return self._store.save(stub_of(whole, tier, state.archive_key))


# --- the messages table's side ----------------------------------------------------------------------------------------


# NamedTuples, not dataclasses: cheaper to create at import, and the message route imports this module.
class DueRange(NamedTuple):
    """Messages whose `at` (first event time + id) is at or after `since` and before `before` (ISO times, UTC),
    oldest first; `tiers` keeps only messages in those tiers (None: any)."""

    since: str | None
    before: str
    tiers: frozenset[str | None] | None = None


class DuePage(NamedTuple):
    messages: list[MessageState]
    cursor: dict[str, Any] | None  # the index's LastEvaluatedKey (DynamoDB JSON), for the next page
    items_read: int


class TierStore(Protocol):
    """The messages table's side of tiering (`DynamoTierStore`)."""

    def due(self, tenant: str, due: DueRange, *, cursor: dict[str, Any] | None, limit: int) -> DuePage: ...

    def delete_stub(self, tenant: str, message_id: str, version: int) -> bool: ...


class DynamoTierStore:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table, self._client = table_name, client

    def due(self, tenant: str, due: DueRange, *, cursor: dict[str, Any] | None, limit: int) -> DuePage:
        """One Query of the ByTime index: at most `limit` items read, those in `due.tiers` returned."""
        partition, sort = INDEXES[_BY_TIME]
        names = {"#p": partition, "#at": sort}
        values: dict[str, Any] = {":p": {"S": tenant}, ":before": {"S": due.before}}
        if due.since is None:
            condition = "#p = :p AND #at < :before"
        else:
            # BETWEEN is inclusive; `at` is `<time>#<id>`, so `<= before` keeps exactly those before `before`.
            condition = "#p = :p AND #at BETWEEN :since AND :before"
            values[":since"] = {"S": due.since}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": _BY_TIME,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": True,
            "Limit": limit,
        }
        if due.tiers is not None:
            names["#tier"] = "tier"
            parts = []
            for index, tier in enumerate(sorted(due.tiers, key=lambda t: t or "")):
                if tier is None:
                    parts.append("attribute_not_exists(#tier)")
                else:
                    values[f":tier{index}"] = {"S": tier}
                    parts.append(f"#tier = :tier{index}")
            request["FilterExpression"] = " OR ".join(parts)
        if cursor:
            prefix = tenant_key(tenant, "MSG") + "#"
            if cursor.get(partition, {}).get("S") != tenant or not cursor.get("pk", {}).get("S", "").startswith(prefix):
                raise ValueError("the cursor is not one of this tenant's ByTime pages")
            request["ExclusiveStartKey"] = cursor
        response = self.client.query(**request)
        return DuePage(
            messages=[from_item(item) for item in response.get("Items", [])],
            cursor=response.get("LastEvaluatedKey"),
            items_read=int(response.get("ScannedCount", 0)),
        )

    def delete_stub(self, tenant: str, message_id: str, version: int) -> bool:
        """Delete the message's item if it is still at `version`; False when it changed (or is gone)."""
        try:
            self.client.delete_item(
                TableName=self._table,
                Key=message_key(tenant, message_id),
                ConditionExpression="version = :read",
                ExpressionAttributeValues={":read": {"N": str(version)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
