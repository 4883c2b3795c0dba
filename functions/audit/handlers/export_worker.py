"""The auditor export worker (docs/audit-exports.md), started two ways:

- by the audit API, asynchronously (`{"audit_export": {"tenant": ..., "export_id": ...}}`): writes the requested
  export and records its outcome (functions/audit/logic/export.py `run_export`);
- by the daily schedule (an EventBridge scheduled event): exports the previous UTC day of every tenant with a
  chain under `audit/exports/<tenant>/scheduled/<date>/`; a tenant that fails makes the run fail after the others,
  so Lambda retries it (tenants already exported are skipped) and its dead-letter queue keeps the last failure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from shared import clock
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings


class ExportWorkerSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)


class ScheduledExportsFailed(Exception):
    """Some tenants' scheduled exports failed (named in the message): the run is retried."""


def _scheduled_time(event: dict[str, Any]) -> datetime:
    # EventBridge's `time` is when the schedule fired: a retry of the run exports the same day.
    text = event.get("time")
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else clock.now()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    chain: Any = None,
    jobs: Any = None,
    files: Any = None,
    audit: Any = None,
) -> dict[str, Any]:
    from functions.audit.dal.chain import DynamoChainStore
    from functions.audit.dal.export_files import S3ExportFiles
    from functions.audit.dal.exports import DynamoExportJobs
    from functions.audit.logic.export import run_export, run_scheduled_exports
    from shared.audit import DynamoAuditLog

    settings = load_settings(ExportWorkerSettings)
    chain = chain or DynamoChainStore(settings.AUDIT_TABLE_NAME)
    files = files or S3ExportFiles(settings.EXPORT_BUCKET_NAME)
    audit = audit or DynamoAuditLog(settings.AUDIT_TABLE_NAME)
    request_id = context.aws_request_id
    requested = event.get("audit_export")
    if isinstance(requested, dict):
        job = run_export(
            str(requested["tenant"]),
            str(requested["export_id"]),
            jobs=jobs or DynamoExportJobs(settings.AUDIT_TABLE_NAME),
            chain=chain,
            files=files,
            audit=audit,
            now=clock.now,
            request_id=request_id,
        )
        logger.info("audit export finished", extra={"export_id": job.export_id, "status": job.status.value})
        metrics.add_metric(name="AuditExportsWritten", unit="Count", value=1 if job.result else 0)
        return {"export_id": job.export_id, "status": job.status.value, "error": job.error}
    run = run_scheduled_exports(
        _scheduled_time(event),
        tenants=chain.tenants(),
        chain=chain,
        files=files,
        audit=audit,
        request_id=request_id,
    )
    metrics.add_metric(name="AuditExportsWritten", unit="Count", value=len(run.written))
    if run.failed:
        raise ScheduledExportsFailed(f"{run.day}: {', '.join(sorted(run.failed))}")
    return {
        "day": run.day.isoformat(),
        "written": sorted(run.written),
        "skipped": run.skipped,
    }
