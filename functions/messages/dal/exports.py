"""The eDiscovery export's job item in the messages table (its files and their links: `dal/export_files.py`).

    Export job     pk T#<t>#EXPORT#<export id>   sk EXPORT

The job item carries no `at` attribute, so it is in none of the table's message indexes (they are sparse), and
every write is conditional on the version read. The words of a text export are sealed in it with the platform's
data key (bound to the tenant and the export), as message content is: a query may name a person.
"""

from __future__ import annotations

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
    from mypy_boto3_dynamodb import DynamoDBClient

EXPORT_SK = "EXPORT"
EXPORTS_PREFIX = "messages/exports/"  # in the export bucket: <tenant>/<export id>/<file>
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
