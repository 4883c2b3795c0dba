"""The audit table's stream consumer: links the entries requests inserted, and counts every change that is not an
insert (metric `AuditItemsChanged`, alarmed: infra/constructs/audit.py). A batch that cannot be linked fails as a
whole and Lambda retries it (linking is idempotent: functions/audit/logic/linker.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.audit.dal.chain import DynamoChainStore
from functions.audit.logic.linker import ChainStore, StreamChange, apply_changes
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

SAMPLE_EVENT = "dynamodb_stream_audit_inbox.json"  # events/


class LinkerSettings(BaseSettings):
    AUDIT_TABLE_NAME: str = Field(min_length=3)


def changes_of(event: dict[str, Any]) -> list[StreamChange]:
    """The stream records of a Lambda DynamoDB-streams event, in order."""
    out = []
    for record in event.get("Records") or []:
        data = record.get("dynamodb") or {}
        keys = data.get("Keys") or {}
        out.append(
            StreamChange(
                event=str(record.get("eventName")),
                pk=str((keys.get("pk") or {}).get("S", "")),
                sk=str((keys.get("sk") or {}).get("S", "")),
                new_image=data.get("NewImage"),
            )
        )
    return out


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext, store: ChainStore | None = None) -> dict[str, int]:
    store = store or DynamoChainStore(load_settings(LinkerSettings).AUDIT_TABLE_NAME)
    report = apply_changes(changes_of(event), store)
    metrics.add_metric(name="AuditEntriesLinked", unit="Count", value=report.linked_entries)
    if report.changes_not_inserts:
        metrics.add_metric(name="AuditItemsChanged", unit="Count", value=len(report.changes_not_inserts))
    return {
        "linked_entries": report.linked_entries,
        "linked_items": report.linked_items,
        "already_linked": report.already_linked,
        "changes_not_inserts": len(report.changes_not_inserts),
    }
