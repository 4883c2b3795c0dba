"""Scheduled synthetic message (every five minutes): a message recorded for the synthetic tenant through the
API's queue must be stored by the ingest consumer within 60 seconds, as recorded; it is then deleted. Publishes
`SyntheticMessageSucceeded` (1 or 0, the alarm's metric) and, when stored, `SyntheticMessageSeconds`.

The probe reports and never raises: an asynchronous invocation that raised would be retried by Lambda and
probe twice more. An optional `{"wait_seconds": n}` (0 to 60) in the event shortens the wait (a manual run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from shared.keys import TENANT_PATTERN
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from functions.messages.dal.messages import IndexQuery, Page
    from functions.messages.logic.record import DeliveryQueue
    from functions.messages.logic.reports import SyntheticStore
    from functions.messages.models.message import MessageState
    from shared.audit import AuditLog

SUCCEEDED_METRIC = "SyntheticMessageSucceeded"
SECONDS_METRIC = "SyntheticMessageSeconds"
_SAFETY_SECONDS = 10.0  # kept back from the function's timeout to delete, audit and flush the metrics


class SyntheticSettings(BaseSettings):
    # A customer tenant's id (never `_platform`: the API refuses system tenants), reserved for the probe.
    SYNTHETIC_TENANT: str = Field(pattern=TENANT_PATTERN)
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    AUDIT_TABLE_NAME: str = Field(min_length=3)
    API_QUEUE_URL: str = Field(min_length=1)


class SyntheticMessages:
    """The messages table as the probe uses it: the store's reads, and a delete that removes synthetic messages
    only (conditional on the ATS message id the probe gave them)."""

    def __init__(self, table_name: str) -> None:
        from functions.messages.dal.messages import DynamoMessageStore

        self._table = table_name
        self._store = DynamoMessageStore(table_name)

    def get(self, tenant: str, message_id: str) -> MessageState | None:
        return self._store.get(tenant, message_id)

    def query(self, tenant: str, query: IndexQuery, *, limit: int, cursor: str | None, filters: dict[str, str]) -> Page:
        return self._store.query(tenant, query, limit=limit, cursor=cursor, filters=filters)

    def delete_synthetic(self, tenant: str, message_id: str) -> bool:
        from functions.messages.dal.items import message_key
        from functions.messages.logic.reports import SYNTHETIC_PREFIX

        client = self._store.client
        try:
            client.delete_item(
                TableName=self._table,
                Key=message_key(tenant, message_id),
                ConditionExpression="begins_with(message_key, :synthetic)",
                ExpressionAttributeValues={":synthetic": {"S": SYNTHETIC_PREFIX}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _wait_seconds(event: dict[str, Any], context: LambdaContext) -> float:
    from functions.messages.logic.reports import WAIT_SECONDS

    asked = event.get("wait_seconds") if isinstance(event, dict) else None
    wait = min(WAIT_SECONDS, float(asked)) if isinstance(asked, int | float) and asked >= 0 else WAIT_SECONDS
    return max(0.0, min(wait, context.get_remaining_time_in_millis() / 1000 - _SAFETY_SECONDS))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    store: SyntheticStore | None = None,
    queue: DeliveryQueue | None = None,
    audit: AuditLog | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Run the probe once; its outcome as a dict (also in the log and the metrics)."""
    import time

    from functions.messages.logic.reports import ProbeResult, synthetic_probe

    try:
        settings = load_settings(SyntheticSettings)
        if queue is None:
            from shared.webhooks import SqsDeliverySink

            queue = SqsDeliverySink(settings.API_QUEUE_URL)
        if audit is None:
            from shared.audit import DynamoAuditLog

            audit = DynamoAuditLog(settings.AUDIT_TABLE_NAME)
        result = synthetic_probe(
            settings.SYNTHETIC_TENANT,
            queue=queue,
            store=store or SyntheticMessages(settings.MESSAGES_TABLE_NAME),
            audit=audit,
            request_id=context.aws_request_id,
            wait_seconds=_wait_seconds(event, context),
            sleep=sleep or time.sleep,
        )
    except Exception as failed:  # the probe's failure is its finding, reported as the metric
        logger.exception("synthetic message probe failed", extra={"error": type(failed).__name__})
        result = ProbeResult(False, problem=f"probe raised {type(failed).__name__}")
    metrics.add_metric(name=SUCCEEDED_METRIC, unit="Count", value=1 if result.succeeded else 0)
    if result.seconds_to_store is not None:
        metrics.add_metric(name=SECONDS_METRIC, unit="Seconds", value=result.seconds_to_store)
    outcome: dict[str, Any] = result._asdict()
    if result.succeeded:
        logger.info("synthetic message stored and checked", extra=outcome)
    else:
        logger.error("synthetic message failed", extra=outcome)
    return outcome
