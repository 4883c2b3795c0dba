"""The eDiscovery export's storage: its job item in the messages table, its files in the export bucket, and the
presigned links to them.

    Export job     pk T#<t>#EXPORT#<export id>   sk EXPORT

The job item carries no `at` attribute, so it is in none of the table's message indexes (they are sparse), and
every write is conditional on the version read. The words of a text export are sealed in it with the platform's
data key (bound to the tenant and the export), as message content is: a query may name a person.

Files live under `messages/exports/<tenant>/<export id>/` in the export bucket (versioned, Object Lock, SSE-KMS
with the bucket's key by default, so no key is named here). Every upload carries its SHA-256 as an S3 checksum:
Object Lock requires a checksum on every write, and S3 then refuses bytes that do not match the digest the
export computed (PutObject: the whole object's SHA-256; multipart: each part's). A file is written as it is
produced (`S3ObjectWriter`): parts of 8 MiB through a multipart upload, or one PutObject when it ends before the
first part is full, so a writer never holds more than one part. Natives are small and many: `S3ExportFiles.put`
uploads them on a few threads, with a bounded number in flight.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.messages.dal.items import key
from functions.messages.models.export_io import (
    ExportCounts,
    ExportedFile,
    ExportFilters,
    ExportJob,
    ExportPhase,
    ExportStatus,
    Segment,
)
from functions.messages.models.message import Channel, Status
from shared import clock
from shared.aws import LazyClient
from shared.keys import check_tenant, tenant_key

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

EXPORT_SK = "EXPORT"
EXPORTS_PREFIX = "messages/exports/"  # in the export bucket: <tenant>/<export id>/<file>
PART_SIZE = 8 * 1024 * 1024  # S3's minimum is 5 MiB for every part but the last
PARALLEL_PUTS = 8  # within botocore's default pool of 10 connections
_COUNTS = tuple(ExportCounts.__dataclass_fields__)


class StaleExport(Exception):
    """The job changed since it was read: another step wrote it. The step fails and is retried from the item."""


def export_key(tenant: str, export_id: str) -> dict[str, Any]:
    return key(tenant_key(tenant, "EXPORT", export_id), EXPORT_SK)


def export_prefix(tenant: str, export_id: str) -> str:
    """`messages/exports/<tenant>/<export id>/`: ends in `/`, so one export's prefix never matches another's."""
    check_tenant(tenant)
    if not export_id or "/" in export_id:
        raise ValueError("an export id has no `/`")
    return f"{EXPORTS_PREFIX}{tenant}/{export_id}/"


# --- the job item -------------------------------------------------------------------------------------------------


class ExportStore(Protocol):
    def create(self, job: ExportJob) -> ExportJob: ...

    def get(self, tenant: str, export_id: str) -> ExportJob | None: ...

    def save(self, job: ExportJob) -> ExportJob: ...


def _s(value: str | None) -> dict[str, Any] | None:
    return {"S": value} if value else None


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _time(value: datetime | None) -> dict[str, Any] | None:
    return {"S": clock.isoformat(value)} if value else None


def _file(f: ExportedFile) -> dict[str, Any]:
    return {"M": {"path": {"S": f.path}, "size": _n(f.size), "sha256": {"S": f.sha256}}}


def _file_from(attr: dict[str, Any]) -> ExportedFile:
    v = attr["M"]
    return ExportedFile(path=v["path"]["S"], size=int(v["size"]["N"]), sha256=v["sha256"]["S"])


def _present(attrs: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    return {name: attr for name, attr in attrs.items() if attr is not None}


class TextCipher(Protocol):
    """shared.crypto.FieldCipher: the words of a text export are sealed in the item, as message content is."""

    def encrypt(self, tenant: str, purpose: str, plaintext: str, *, record: str, field: str) -> str: ...

    def decrypt(self, tenant: str, purpose: str, value: str, *, record: str, field: str) -> str: ...


_SEALED_PURPOSE = "message-export"


def to_item(job: ExportJob, cipher: TextCipher | None = None) -> dict[str, Any]:
    f = job.filters
    sealed_text = None
    if f.text is not None:
        if cipher is None:
            raise ValueError("a text export's words are sealed: the store needs the cipher")
        sealed_text = cipher.encrypt(job.tenant, _SEALED_PURPOSE, f.text, record=job.export_id, field="text")
    filters = _present(
        {
            "candidate_id": _s(f.candidate_id),
            "requisition_id": _s(f.requisition_id),
            "status": _s(f.status.value if f.status else None),
            "channel": _s(f.channel.value if f.channel else None),
            "since": _time(f.since),
            "until": _time(f.until),
            "sealed_text": _s(sealed_text),
        }
    )
    segments = [
        {
            "M": {
                "number": _n(s.number),
                "first_doc": _n(s.first_doc),
                "documents": _n(s.documents),
                "files": {"L": [_file(x) for x in s.files]},
            }
        }
        for s in job.segments
    ]
    return _present(
        {
            **export_key(job.tenant, job.export_id),
            # No `at`: the ByTime index (tenant, at) must not see the job.
            "tenant": {"S": job.tenant},
            "export_id": {"S": job.export_id},
            "requested_by": {"S": job.requested_by},
            "requested_at": _time(job.requested_at),
            "filters": {"M": filters},
            "content_included": {"BOOL": job.content_included},
            "docid_prefix": {"S": job.docid_prefix},
            "export_status": {"S": job.status.value},
            "phase": {"S": job.phase.value},
            "started_at": _time(job.started_at),
            "finished_at": _time(job.finished_at),
            "cursor": _s(job.cursor),
            "next_doc": _n(job.next_doc),
            "segments": {"L": segments},
            "counts": {"M": {name: _n(getattr(job.counts, name)) for name in _COUNTS}},
            "manifest": _file(job.manifest) if job.manifest else None,
            "error": _s(job.error),
            "version": _n(job.version),
        }
    )


def from_item(item: dict[str, Any], cipher: TextCipher | None = None) -> ExportJob:
    def s(attrs: dict[str, Any], name: str) -> str | None:
        return attrs[name]["S"] if name in attrs else None

    def t(attrs: dict[str, Any], name: str) -> datetime | None:
        text = s(attrs, name)
        return datetime.fromisoformat(text) if text else None

    f = item["filters"]["M"]
    status, channel = s(f, "status"), s(f, "channel")
    requested_at = t(item, "requested_at")
    assert requested_at is not None
    tenant, export_id = item["tenant"]["S"], item["export_id"]["S"]
    sealed, text = s(f, "sealed_text"), None
    if sealed is not None:
        if cipher is None:
            raise ValueError("a text export's words are sealed: the store needs the cipher")
        text = cipher.decrypt(tenant, _SEALED_PURPOSE, sealed, record=export_id, field="text")
    counts = item["counts"]["M"]
    return ExportJob(
        tenant=tenant,
        export_id=export_id,
        requested_by=item["requested_by"]["S"],
        requested_at=requested_at,
        filters=ExportFilters(
            candidate_id=s(f, "candidate_id"),
            requisition_id=s(f, "requisition_id"),
            status=Status(status) if status else None,
            channel=Channel(channel) if channel else None,
            since=t(f, "since"),
            until=t(f, "until"),
            text=text,
        ),
        content_included=bool(item["content_included"]["BOOL"]),
        docid_prefix=item["docid_prefix"]["S"],
        status=ExportStatus(item["export_status"]["S"]),
        phase=ExportPhase(item["phase"]["S"]),
        started_at=t(item, "started_at"),
        finished_at=t(item, "finished_at"),
        cursor=s(item, "cursor"),
        next_doc=int(item["next_doc"]["N"]),
        segments=tuple(
            Segment(
                number=int(v["M"]["number"]["N"]),
                first_doc=int(v["M"]["first_doc"]["N"]),
                documents=int(v["M"]["documents"]["N"]),
                files=tuple(_file_from(x) for x in v["M"]["files"]["L"]),
            )
            for v in item.get("segments", {}).get("L", [])
        ),
        counts=ExportCounts(**{name: int(counts[name]["N"]) for name in _COUNTS if name in counts}),
        manifest=_file_from(item["manifest"]) if "manifest" in item else None,
        error=s(item, "error"),
        version=int(item["version"]["N"]),
    )


class DynamoExportStore:
    """Jobs in the messages table. `cipher` seals and opens the words of a text export (the data key, bound to
    the tenant and the export); a store without one refuses a job that has words."""

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, *, cipher: TextCipher | None = None
    ) -> None:
        self._table, self._client, self._cipher = table_name, client, cipher

    def create(self, job: ExportJob) -> ExportJob:
        """Store a new job (version 1); a job already stored under its id is a StaleExport."""
        return self._put(job, {"ConditionExpression": "attribute_not_exists(pk)"})

    def save(self, job: ExportJob) -> ExportJob:
        """Write the job if nobody did since it was read; the stored copy, with its new version."""
        return self._put(
            job,
            {
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": {":read": _n(job.version)},
            },
        )

    def _put(self, job: ExportJob, condition: dict[str, Any]) -> ExportJob:
        from dataclasses import replace

        stored = replace(job, version=job.version + 1)
        try:
            self.client.put_item(TableName=self._table, Item=to_item(stored, self._cipher), **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise StaleExport(job.export_id) from None
        return stored

    def get(self, tenant: str, export_id: str) -> ExportJob | None:
        found = self.client.get_item(TableName=self._table, Key=export_key(tenant, export_id), ConsistentRead=True)
        return from_item(found["Item"], self._cipher) if "Item" in found else None


# --- the files ----------------------------------------------------------------------------------------------------


def _checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class S3ObjectWriter:
    """One object written as it is produced. Bytes collect in one buffer; each time it holds a part (8 MiB) the
    part is copied out and uploaded, and the object is completed (or, if it never filled a part, put whole) on
    `close`: at most a part's buffer and the part being sent are held."""

    def __init__(self, client: S3Client, bucket: str, key: str, content_type: str, part_size: int = PART_SIZE):
        self._client, self._bucket, self._key, self._type = client, bucket, key, content_type
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []  # one small entry per part uploaded: ETag and checksum

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            part = bytes(memoryview(self._buffer)[: self._part_size])
            del self._buffer[: self._part_size]  # what overflowed the part stays: less than one write
            self._upload_part(part)

    def _upload_part(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=self._type, ChecksumAlgorithm="SHA256"
            )["UploadId"]
        number = len(self._parts) + 1
        checksum = _checksum(part)
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=part,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum})

    def close(self) -> None:
        if self._upload_id is None:
            body, self._buffer = bytes(self._buffer), bytearray()
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=body,
                ContentType=self._type,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=_checksum(body),
            )
            return
        if self._buffer:
            last, self._buffer = bytes(self._buffer), bytearray()
            self._upload_part(last)
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
        )
        self._upload_id = None

    def abort(self) -> None:
        """Give up the object: an unfinished multipart upload is aborted (the bucket's lifecycle rule is the
        backstop for a function that dies before it can)."""
        self._buffer = bytearray()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)


class S3ExportFiles:
    """The files of one export (paths relative to its prefix): streamed writers, natives put on a few threads
    (at most `2 * parallel` bodies held at once), and a file read back line by line."""

    client: LazyClient[S3Client] = LazyClient("s3")

    def __init__(
        self,
        bucket: str,
        tenant: str,
        export_id: str,
        client: S3Client | None = None,
        *,
        part_size: int = PART_SIZE,
        parallel: int = PARALLEL_PUTS,
    ) -> None:
        self._bucket, self._client = bucket, client
        self.prefix = export_prefix(tenant, export_id)
        self._part_size = part_size
        self._parallel = max(1, parallel)
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: deque[Future[None]] = deque()

    def key(self, path: str) -> str:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"not a path inside the export: {path!r}")
        return self.prefix + path

    def writer(self, path: str, content_type: str) -> S3ObjectWriter:
        return S3ObjectWriter(self.client, self._bucket, self.key(path), content_type, self._part_size)

    def put(self, path: str, data: bytes, *, sha256: bytes, content_type: str) -> None:
        """Upload a small file whose SHA-256 (raw digest) the caller computed; it may still be in flight when this
        returns: `drain` waits for every upload and raises the first failure."""
        if self._parallel == 1:
            self._put(self.key(path), data, sha256, content_type)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="export-put")
        while len(self._in_flight) >= 2 * self._parallel:
            self._in_flight.popleft().result()
        client = self.client  # resolved here, on this thread
        self._in_flight.append(self._pool.submit(self._put, self.key(path), data, sha256, content_type, client))

    def _put(self, key: str, data: bytes, sha256: bytes, content_type: str, client: S3Client | None = None) -> None:
        (client or self.client).put_object(
            Bucket=self._bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(sha256).decode(),
        )

    def drain(self) -> None:
        while self._in_flight:
            self._in_flight.popleft().result()

    def lines(self, path: str) -> Iterator[bytes]:
        """The file's lines, each with its line ending, read as a stream (64 KiB at a time)."""
        body = self.client.get_object(Bucket=self._bucket, Key=self.key(path))["Body"]
        try:
            yield from body.iter_lines(chunk_size=64 * 1024, keepends=True)
        finally:
            body.close()

    def close(self, *, quiet: bool = False) -> None:
        """Wait for the uploads in flight and stop the threads; `quiet` when a failure is already being raised,
        so that an upload's own failure does not replace it."""
        try:
            self.drain()
        except Exception:
            if not quiet:
                raise
        finally:
            self._in_flight.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None


# --- links --------------------------------------------------------------------------------------------------------


class S3ExportLinks:
    """Presigned URLs (SigV4, the regional virtual-hosted endpoint) for an export's files and for a listing of
    its prefix. The URL carries the signer's authority: this function's role must be allowed s3:GetObject on the
    exports, s3:ListBucket on their prefix and kms:Decrypt on the bucket's key through S3."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self._bucket, self._client = bucket, client

    def _signer(self) -> Any:
        if self._client is None:
            # The shared clients sign S3 URLs with SigV2 on the global endpoint; links need SigV4 and the region.
            from botocore.config import Config

            from shared.aws import _session

            self._client = _session().create_client(
                "s3", config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
            )
        return self._client

    def download(self, key: str, seconds: int) -> str:
        url: str = self._signer().generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
        )
        return url

    def listing(self, prefix: str, seconds: int) -> str:
        url: str = self._signer().generate_presigned_url(
            "list_objects_v2", Params={"Bucket": self._bucket, "Prefix": prefix}, ExpiresIn=seconds
        )
        return url
