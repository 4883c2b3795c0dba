"""GET /v1/health: no authentication; the status, versions, the service clock and the last workflow heartbeat.

The status is `degraded` when the scheduled health workflow has not recorded a heartbeat within
`HEALTH_STALE_AFTER_SECONDS`; the answer is still a 200, since the API that answers is up.
"""

from __future__ import annotations

import platform
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import __version__ as powertools_version
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.platform.dal.heartbeats import DynamoHeartbeatStore
from functions.platform.logic.health import check_health
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
    description=(
        "Answers without authentication: `ok`, or `degraded` when the scheduled health workflow's last heartbeat "
        "is stale or missing (HTTP 200 either way), versions, the service clock and the last health-workflow run."
    ),
    responses={
        **ok_response(HealthOutput, "The service answers; `status` says ok or degraded"),
        **error_responses(500, 503),
    },
    tags=["platform"],
)
def get_health() -> HealthOutput:
    settings = load_settings(HealthSettings)
    health = check_health(
        DynamoHeartbeatStore(settings.PLATFORM_TABLE_NAME),
        stale_after=timedelta(seconds=settings.HEALTH_STALE_AFTER_SECONDS),
    )
    return HealthOutput(
        status=health.status,
        versions=VersionsOutput(
            service=settings.SERVICE_VERSION, python=platform.python_version(), powertools=powertools_version
        ),
        now=clock.now(),
        last_heartbeat=health.last_heartbeat,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
