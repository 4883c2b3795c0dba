"""Workflow step of the eDiscovery export (the state machine is started by `MessageExportRequested` and calls
this function until `done`; its catch calls it once more with the error).

Input: the EventBridge event on the first step, then the previous step's output; the catch passes the state it
caught with `"error": {"Error", "Cause"}` added.
Output: `{"tenant", "export_id", "status", "done"}`. Each step writes one segment of the export (and, when every
document is written, the manifest) within the time the invocation has left (functions/messages/logic/export.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.dal.exports import DynamoExportStore, ExportStore
from functions.messages.logic.export import (
    ExportFiles,
    MessageSource,
    SearchSource,
    error_of,
    fail_export,
    run_export_step,
)
from functions.messages.models.export_io import EXPORT_ID_PATTERN, ExportJob, ExportStatus, MessageExportRequested
from shared.audit import AuditLog, DynamoAuditLog
from shared.keys import tenant_problem
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

SAMPLE_EVENT = "eventbridge_message_export_requested.json"  # events/: the first step's input


class ExportWorkerSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    EXPORT_BUCKET_NAME: str = Field(min_length=3)
    ARCHIVE_BUCKET_NAME: str = Field(min_length=3)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)


def job_ref(event: dict[str, Any]) -> tuple[str, str]:
    """(tenant, export id) of the step's input: the `MessageExportRequested` event, or a previous step's output."""
    if event.get("detail-type") == MessageExportRequested.detail_type:
        requested = MessageExportRequested.model_validate(event.get("detail"))
        return requested.tenant, requested.export_id
    tenant, export_id = event.get("tenant"), event.get("export_id")
    if not isinstance(tenant, str) or tenant_problem(tenant):
        raise ValueError("the step's input names no valid tenant")
    if not isinstance(export_id, str) or not re.match(EXPORT_ID_PATTERN, export_id):
        raise ValueError("the step's input names no valid export")
    return tenant, export_id


class _Opener:
    """Opens sealed content with the step's one FieldCipher, so its data keys are reused."""

    def __init__(self, cipher: Any) -> None:
        self._cipher = cipher

    def open(self, tenant: str, message_id: str, field_name: str, sealed: str) -> str:
        return self._cipher.decrypt(tenant, "message", sealed, record=message_id, field=field_name)


class _TextIndex:
    """The blind index, built when a text export first needs it."""

    def __init__(self, secret_prefix: str) -> None:
        self._prefix = secret_prefix
        self._index: Any = None

    def query(self, tenant: str, query: str) -> list[list[str]]:
        if self._index is None:
            from functions.messages.logic.blind_index import BlindIndex
            from shared.crypto import TenantKeys
            from shared.secrets import TenantSecrets

            self._index = BlindIndex(TenantKeys(TenantSecrets(self._prefix)))
        result: list[list[str]] = self._index.query(tenant, query)
        return result


def _time_left(context: Any) -> Callable[[], float]:
    """Seconds this invocation has left; unbounded where the context cannot tell (tests, benchmarks)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None or not remaining():
        return lambda: float("inf")
    return lambda: remaining() / 1000


def _output(tenant: str, export_id: str, job: ExportJob | None) -> dict[str, Any]:
    status = job.status.value if job else "missing"
    return {"tenant": tenant, "export_id": export_id, "status": status, "done": job is None or job.status.finished}


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    store: ExportStore | None = None,
    files: ExportFiles | None = None,
    source: MessageSource | None = None,
    audit: AuditLog | None = None,
    opener: Any = None,
    time_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    tenant, export_id = job_ref(event)
    logger.append_keys(tenant=tenant, export_id=export_id)
    settings = load_settings(ExportWorkerSettings)
    from shared.crypto import FieldCipher

    cipher = FieldCipher(settings.DATA_KEY_ARN)  # one per step: content and the job's sealed words share its keys
    store = store or DynamoExportStore(settings.MESSAGES_TABLE_NAME, cipher=cipher)
    audit = audit or DynamoAuditLog(settings.AUDIT_TABLE_NAME)
    if "error" in event:
        failed = fail_export(tenant, export_id, error_of(event["error"]), store=store, audit=audit)
        metrics.add_metric(name="MessageExportsFailed", unit="Count", value=1)
        return _output(tenant, export_id, failed)
    owned = None
    if files is None:
        from functions.messages.dal.export_files import S3ExportFiles

        files = owned = S3ExportFiles(settings.EXPORT_BUCKET_NAME, tenant, export_id)
    if source is None:
        from functions.messages.dal.archive import ArchivedMessages, S3MessageArchive
        from functions.messages.dal.messages import DynamoMessageStore

        messages = DynamoMessageStore(settings.MESSAGES_TABLE_NAME)
        # A message in the warm or cold tier is exported whole: its content read back from the archive bucket.
        whole = ArchivedMessages(messages, S3MessageArchive(settings.ARCHIVE_BUCKET_NAME), whole_in_queries=True)
        source = SearchSource(whole, _TextIndex(settings.TENANT_SECRET_PREFIX), messages)
    try:
        job = run_export_step(
            tenant,
            export_id,
            store=store,
            files=files,
            source=source,
            audit=audit,
            time_left=time_left or _time_left(context),
            opener=opener or _Opener(cipher),
        )
    except BaseException:
        if owned is not None:
            owned.close(quiet=True)
        raise
    if owned is not None:
        owned.close()
    if job.status is ExportStatus.SUCCEEDED:
        metrics.add_metric(name="MessageExportsSucceeded", unit="Count", value=1)
        metrics.add_metric(name="MessageExportDocuments", unit="Count", value=job.counts.documents)
    return _output(tenant, export_id, job)
