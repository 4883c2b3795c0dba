"""GET /v1/health: no authentication; versions, the service clock and the last workflow heartbeat."""

from __future__ import annotations

import platform
from typing import Any

from aws_lambda_powertools import __version__ as powertools_version
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.dal.heartbeats import DynamoHeartbeatStore
from functions.platform.logic.health import latest_heartbeat
from functions.platform.models.env import HealthSettings
from functions.platform.models.output import HealthOutput, VersionsOutput
from shared import clock
from shared.http import build_resolver, error_responses, ok_response
from shared.observability import logger, metrics, tracer
from shared.settings import load_settings

app = build_resolver()


@app.get(
    "/v1/health",
    summary="Service health",
    description="Answers without authentication: versions, the service clock and the last health-workflow run.",
    responses={**ok_response(HealthOutput, "The service is up"), **error_responses(500, 503)},
    tags=["platform"],
)
def get_health() -> HealthOutput:
    settings = load_settings(HealthSettings)
    heartbeat = latest_heartbeat(DynamoHeartbeatStore(settings.PLATFORM_TABLE_NAME))
    return HealthOutput(
        status="ok",
        versions=VersionsOutput(
            service=settings.SERVICE_VERSION, python=platform.python_version(), powertools=powertools_version
        ),
        now=clock.now(),
        last_heartbeat=heartbeat.checked_at if heartbeat else None,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
