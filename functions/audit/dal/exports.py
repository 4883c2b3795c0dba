"""Auditor export jobs in the audit table, and the start of the export worker.

    Request   pk T#<tenant>#AUDITEXPORT   sk <export id>#REQUESTED        range, requested_by, requested_at
    Ready     pk T#<tenant>#AUDITEXPORT   sk <export id>#READY            finished_at, counts, manifest size/sha256
    Failed    pk T#<tenant>#AUDITEXPORT   sk <export id>#FAILED#<time>    finished_at, error

Every state is a new item, written only if absent: the audit table takes inserts and nothing else (its stream
counts and alarms on any change that is not one). A job's state is read with one consistent Query of its items:
ready wins over failed (a retried run that succeeded), failed over requested.

The worker is started with an asynchronous Lambda invocation (`InvocationType=Event`): no queue, rule or
permission to deploy, and Lambda's own retries (two, backed off) and dead-letter queue for a failed run
(docs/audit-exports.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from functions.audit.models.export import ExportJob, ExportRange, ExportResult, ExportStatus, FileInfo
from shared import clock
from shared.aws import LazyClient
from shared.keys import tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

JOBS = "AUDITEXPORT"
_ABSENT = "attribute_not_exists(pk)"


def jobs_pk(tenant: str) -> str:
    return tenant_key(tenant, JOBS)


def _iso(moment: datetime) -> str:
    return clock.isoformat(moment)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class DynamoExportJobs:
    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table, self._client = table_name, client

    def _insert(self, item: dict[str, Any]) -> None:
        try:
            self.client.put_item(TableName=self._table, Item=item, ConditionExpression=_ABSENT)
        except self.client.exceptions.ConditionalCheckFailedException:
            return  # written by an earlier attempt: it stands

    def insert_request(self, job: ExportJob) -> None:
        r = job.range
        self._insert(
            {
                "pk": {"S": jobs_pk(job.tenant)},
                "sk": {"S": f"{job.export_id}#REQUESTED"},
                "tenant": {"S": job.tenant},
                "export_id": {"S": job.export_id},
                "requested_since": {"S": r.requested_since.isoformat()},
                "requested_until": {"S": r.requested_until.isoformat()},
                "since": {"S": r.start.isoformat()},
                "until": {"S": r.end.isoformat()},
                "requested_by": {"S": job.requested_by},
                "requested_at": {"S": _iso(job.requested_at)},
            }
        )

    def insert_outcome(self, job: ExportJob) -> None:
        assert job.finished_at is not None
        item: dict[str, Any] = {
            "pk": {"S": jobs_pk(job.tenant)},
            "finished_at": {"S": _iso(job.finished_at)},
        }
        if job.status is ExportStatus.READY and job.result is not None:
            result = job.result
            item["sk"] = {"S": f"{job.export_id}#READY"}
            item["result"] = {
                "S": json.dumps(
                    {
                        "periods": result.periods,
                        "entries": result.entries,
                        "files": result.files,
                        "bytes": result.bytes,
                        "manifest_size": result.manifest.size,
                        "manifest_sha256": result.manifest.sha256,
                    }
                )
            }
        else:
            item["sk"] = {"S": f"{job.export_id}#FAILED#{_iso(job.finished_at)}"}
            item["error"] = {"S": job.error or "failed"}
        self._insert(item)

    def get(self, tenant: str, export_id: str) -> ExportJob | None:
        page = self.client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :id)",
            ExpressionAttributeValues={":pk": {"S": jobs_pk(tenant)}, ":id": {"S": f"{export_id}#"}},
            ConsistentRead=True,
        )
        items = {item["sk"]["S"][len(export_id) + 1 :]: item for item in page.get("Items", [])}
        request = items.get("REQUESTED")
        if request is None:
            return None
        job = ExportJob(
            tenant=request["tenant"]["S"],
            export_id=export_id,
            range=ExportRange(
                _moment(request["requested_since"]["S"]),
                _moment(request["requested_until"]["S"]),
                _moment(request["since"]["S"]),
                _moment(request["until"]["S"]),
            ),
            requested_by=request["requested_by"]["S"],
            requested_at=_moment(request["requested_at"]["S"]),
        )
        ready = items.get("READY")
        if ready is not None:
            counts = json.loads(ready["result"]["S"])
            return _with(
                job,
                status=ExportStatus.READY,
                finished_at=_moment(ready["finished_at"]["S"]),
                result=ExportResult(
                    periods=counts["periods"],
                    entries=counts["entries"],
                    files=counts["files"],
                    bytes=counts["bytes"],
                    manifest=FileInfo("manifest.json", counts["manifest_size"], counts["manifest_sha256"]),
                ),
            )
        failures = sorted(key for key in items if key.startswith("FAILED#"))
        if failures:
            failed = items[failures[-1]]
            return _with(
                job,
                status=ExportStatus.FAILED,
                finished_at=_moment(failed["finished_at"]["S"]),
                error=failed["error"]["S"],
            )
        return job


def _with(job: ExportJob, **changes: Any) -> ExportJob:
    from dataclasses import replace

    return replace(job, **changes)


class LambdaExportStarter:
    """Starts the export worker for one job: an asynchronous invocation carrying only the job's key (the worker
    reads the request from the table, not from the event)."""

    client: LazyClient[Any] = LazyClient("lambda")  # no Lambda stubs installed

    def __init__(self, function_name: str, client: Any = None) -> None:
        self._function, self._client = function_name, client

    def start(self, tenant: str, export_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        from shared.errors import DependencyFailure

        try:
            self.client.invoke(
                FunctionName=self._function,
                InvocationType="Event",
                Payload=json.dumps({"audit_export": {"tenant": tenant, "export_id": export_id}}).encode(),
            )
        except (BotoCoreError, ClientError) as failed:
            raise DependencyFailure("the audit export could not be started") from failed
