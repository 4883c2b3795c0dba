"""Step Functions task of the health workflow: record a heartbeat that GET /v1/health reports."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.dal.heartbeats import DynamoHeartbeatStore, HeartbeatStore
from functions.platform.logic.health import record_heartbeat
from functions.platform.models.env import PlatformTableSettings
from shared import clock
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, store: HeartbeatStore | None = None
) -> dict[str, Any]:
    """Input: the state machine's `{"execution": "<execution id>"}`; output: the recorded heartbeat."""
    if store is None:
        store = DynamoHeartbeatStore(load_settings(PlatformTableSettings).PLATFORM_TABLE_NAME)
    heartbeat = record_heartbeat(store, execution=event.get("execution"))
    metrics.add_metric(name="HealthHeartbeats", unit="Count", value=1)
    return {"checked_at": clock.isoformat(heartbeat.checked_at), "execution": heartbeat.execution}
