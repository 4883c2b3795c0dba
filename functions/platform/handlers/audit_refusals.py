"""CloudWatch Logs subscription on the API access log: audits every request refused before any function ran.

The authorizer rejects a missing, expired or wrongly signed token at the gateway, so no function of ours sees
it; its access-log line does. Refusals are chained under the `_gateway` pseudo-tenant, since an unverified
token's tenant claim cannot be trusted.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.models.env import AuditedApiSettings
from shared.audit import AuditEntry, AuditLog, DynamoAuditLog, Outcome, batched
from shared.keys import GATEWAY_TENANT
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings


def _entry(record: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        tenant=GATEWAY_TENANT,
        actor="anonymous",
        action=f"{record.get('httpMethod', '-')} {record.get('resourcePath') or record.get('path', '-')}"[:128],
        resource=str(record.get("path") or "-")[:512],
        outcome=Outcome.DENIED,
        request_id=str(record.get("requestId") or "-")[:128],
        reason=f"{record.get('status')}: {record.get('errorMessage') or 'refused by the gateway'}"[:512],
        source_ip=(str(record["ip"])[:64] if record.get("ip") else None),
    )


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext, audit: AuditLog | None = None) -> dict[str, int]:
    """Append one audit entry per 401/403 access-log line; unparseable lines are logged and skipped."""
    if audit is None:
        audit = DynamoAuditLog(load_settings(AuditedApiSettings).AUDIT_TABLE_NAME)
    data = CloudWatchLogsEvent(event).parse_logs_data()
    audited = skipped = 0
    with batched():  # a burst of refusals is one insert, however many lines the batch holds
        for log_event in data.log_events:
            audited, skipped = _audit_line(log_event, audit, audited, skipped)
    metrics.add_metric(name="GatewayRefusalsAudited", unit="Count", value=audited)
    return {"audited": audited, "skipped": skipped}


def _audit_line(log_event: Any, audit: AuditLog, audited: int, skipped: int) -> tuple[int, int]:
    """Audit one access-log line if it is a refusal the gateway made: the counts (audited, skipped) after it."""
    try:
        record = json.loads(log_event.message)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        logger.warning("access-log line is not a JSON object", extra={"log_event_id": log_event.get_id})
        return audited, skipped + 1
    # The same test as the subscription filter: a refusal, and no function ran (functions audit their own).
    if str(record.get("status")) not in ("401", "403") or record.get("integrationStatus", "-") not in ("-", ""):
        return audited, skipped + 1
    audit.append(_entry(record))
    return audited + 1, skipped
